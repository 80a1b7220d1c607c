package main

import (
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// loadMessage reads a CRI message written as JSON or YAML, with the
// field names crictl's examples use (proto or JSON names).
func loadMessage(path string, m proto.Message) error {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return err
	}
	js, err := yaml.YAMLToJSON(b) // JSON is YAML, so this takes either
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := protojson.Unmarshal(js, m); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
