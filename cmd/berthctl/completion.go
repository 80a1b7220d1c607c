package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Shell completion: contrib/completion/berthctl.bash and _berthctl are
// small scripts that ask `berthctl __complete WORD... CURRENT` for the
// candidates, so they never go stale as commands are added, and IDs
// come from the endpoint the command line names.

func init() {
	register(&command{name: completeCommand, usage: "WORD... CURRENT",
		summary: "print completion candidates (used by contrib/completion)", run: runComplete})
}

const completeCommand = "__complete"

// completeFiles, printed alone, tells the scripts to complete file names.
const completeFiles = ":files"

// argKinds say what the positional arguments of a command are; a command
// not listed takes arguments that cannot be completed.
var argKinds = map[string][]string{
	"start": {"container..."}, "stop": {"container..."}, "rm": {"container..."},
	"inspect": {"container..."}, "logs": {"container"}, "exec": {"container"},
	"ps": {"container"}, "create": {"pod", "image"},
	"pods": {"pod"}, "inspectp": {"pod..."}, "stopp": {"pod..."}, "rmp": {"pod..."},
	"runp": {"file"}, "rmi": {"image..."}, "inspecti": {"image..."}, "images": {"image"},
	"run": {"image"},
}

// globalFlagsWithValue are berthctl's own flags that take a value.
var globalFlagsWithValue = map[string]bool{"endpoint": true, "timeout": true, "o": true}

func runComplete(c *cli, args []string) error {
	for _, w := range complete(c, args) {
		fmt.Println(w)
	}
	return nil
}

// complete returns the candidates for the last of words, the command line
// after "berthctl".
func complete(c *cli, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	// Berthctl's own flags come first.
	i := 0
	for i < len(before) && strings.HasPrefix(before[i], "-") {
		name := strings.TrimLeft(before[i], "-")
		if v, ok := strings.CutPrefix(name, "endpoint="); ok {
			c.endpoint = v
		}
		if globalFlagsWithValue[name] {
			if i+1 < len(before) && name == "endpoint" {
				c.endpoint = before[i+1]
			}
			i++
		}
		i++
	}
	if i > len(before) { // cur is a global flag's value
		switch strings.TrimLeft(before[len(before)-1], "-") {
		case "o":
			return withPrefix([]string{"table", "json", "yaml"}, cur)
		case "endpoint":
			return []string{completeFiles}
		}
		return nil
	}
	if i == len(before) {
		if strings.HasPrefix(cur, "-") {
			return withPrefix([]string{"-endpoint", "-timeout", "-o", "-h"}, cur)
		}
		var names []string
		for n := range commands {
			if !strings.HasPrefix(n, "__") {
				names = append(names, n)
			}
		}
		return withPrefix(names, cur)
	}
	name, rest := before[i], before[i+1:]
	if strings.HasPrefix(cur, "-") {
		return nil // a command's own flags are listed by `berthctl COMMAND -h`
	}
	if len(rest) > 0 && (rest[len(rest)-1] == "-f" || rest[len(rest)-1] == "-v") {
		return []string{completeFiles}
	}
	kinds := argKinds[name]
	if len(kinds) == 0 {
		return nil
	}
	// The argument's position, skipping the command's flags (a flag's
	// value cannot be told from an argument here; most take none).
	pos := 0
	for _, w := range rest {
		if !strings.HasPrefix(w, "-") {
			pos++
		}
	}
	kind := kinds[len(kinds)-1]
	if pos < len(kinds) {
		kind = kinds[pos]
	} else if !strings.HasSuffix(kind, "...") {
		return nil
	}
	return withPrefix(c.listForCompletion(strings.TrimSuffix(kind, "...")), cur)
}

// listForCompletion lists what the endpoint has of a kind; errors mean
// no candidates, never a message in the middle of the user's line.
func (c *cli) listForCompletion(kind string) []string {
	if kind == "file" {
		return []string{completeFiles}
	}
	if c.connect() != nil {
		return nil
	}
	defer c.conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out []string
	switch kind {
	case "container":
		resp, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		if err == nil {
			for _, ct := range resp.Containers {
				out = append(out, truncID(ct.Id))
			}
		}
	case "pod":
		resp, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err == nil {
			for _, p := range resp.Items {
				out = append(out, truncID(p.Id))
			}
		}
	case "image":
		resp, err := c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
		if err == nil {
			for _, img := range resp.Images {
				out = append(out, img.RepoTags...)
			}
		}
	}
	return out
}

func withPrefix(words []string, prefix string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, prefix) {
			out = append(out, w)
		}
	}
	sort.Strings(out)
	return out
}
