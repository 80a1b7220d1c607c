package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// print writes rows as a table, or obj as JSON or YAML with -o. Proto
// messages are encoded with protojson so field names match the CRI's.
func (c *cli) print(obj any, headers []string, rows [][]string) error {
	switch c.output {
	case "json", "yaml":
		b, err := marshalJSON(obj)
		if err != nil {
			return err
		}
		if c.output == "yaml" {
			if b, err = yaml.JSONToYAML(b); err != nil {
				return err
			}
		}
		_, err = os.Stdout.Write(append(b, '\n'))
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
	for i, h := range headers {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, h)
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				fmt.Fprint(w, "\t")
			}
			fmt.Fprint(w, v)
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

func marshalJSON(obj any) ([]byte, error) {
	if m, ok := obj.(proto.Message); ok {
		// protojson randomises its whitespace on purpose; re-indent with
		// encoding/json so scripts (and people) get stable output.
		b, err := protojson.Marshal(m)
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "  "); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	}
	return json.MarshalIndent(obj, "", "  ")
}

// truncID shortens a 64-hex id for tables, as crictl does.
func truncID(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}
