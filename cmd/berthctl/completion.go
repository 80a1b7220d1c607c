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
	"run": {"image"}, "attach": {"container"}, "port-forward": {"pod"},
	"stats": {"container"}, "statsp": {"pod"}, "pull": {"image"},
	"checkpoint": {"container"}, "checkpoint-pod": {"pod", "container..."},
	"restore-pod": {"file", "file", "file..."}, "restore": {"file", "pod", "file"},
}

// flagValues name each command's flags that take a value, with what the
// value is (an argKinds kind, "choice:A,B" for a fixed set, "" when it
// cannot be completed); a flag not listed is a boolean. They tell a
// flag's value from an argument. TestFlagValuesMatchCommands keeps them
// in step with the commands' flag sets.
var flagValues = map[string]map[string]string{
	"create": {"f": "file", "name": "", "attempt": "", "env": "", "label": "", "workdir": "", "log": ""},
	"stop":   {"t": ""},
	"ps":     {"pod": "pod", "state": "choice:created,running,exited", "label": ""},
	"exec":   {"timeout": ""},
	"logs":   {"tail": ""},
	"pull":   {"creds": "", "auth": "", "registry-token": ""},
	"runp":   {"r": ""},
	"pods":   {"state": "choice:ready,notready", "label": ""},
	"stats":  {"pod": "pod", "label": ""},
	"statsp": {"label": ""},
	"run": {"name": "", "r": "", "pull": "choice:missing,always,never", "stop-timeout": "",
		"e": "", "p": "", "v": "file"},
	"port-forward":   {"address": ""},
	"checkpoint":     {"o": "file"},
	"checkpoint-pod": {"o": "file"},
	"restore-pod":    {"r": ""},
	"bench":          {"pods": "", "parallel": "", "image": "image", "handler": "", "execs": "", "pid": "choice:container,pod", "log-dir": "file"},
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
	pos, flagKind, isValue := argPosition(name, rest)
	if isValue {
		if choices, ok := strings.CutPrefix(flagKind, "choice:"); ok {
			return withPrefix(strings.Split(choices, ","), cur)
		}
		if flagKind == "" {
			return nil
		}
		return withPrefix(c.listForCompletion(flagKind), cur)
	}
	kinds := argKinds[name]
	if len(kinds) == 0 {
		return nil
	}
	kind := kinds[len(kinds)-1]
	if pos < len(kinds) {
		kind = kinds[pos]
	} else if !strings.HasSuffix(kind, "...") {
		return nil
	}
	return withPrefix(c.listForCompletion(strings.TrimSuffix(kind, "...")), cur)
}

// argPosition reads a command's words before the one being completed as
// Go's flag package does: flags (and the values of those in flagValues)
// until "--" or the first argument, arguments from there on. It returns
// how many arguments precede the current word, or, when the current word
// is a flag's value, that flag's kind and true.
func argPosition(name string, rest []string) (pos int, kind string, isValue bool) {
	flags := true
	for i := 0; i < len(rest); i++ {
		w := rest[i]
		switch {
		case !flags:
			pos++
		case w == "--":
			flags = false
		case len(w) > 1 && strings.HasPrefix(w, "-"):
			f := strings.TrimLeft(w, "-")
			k, takesValue := flagValues[name][f]
			if !takesValue || strings.Contains(f, "=") {
				continue
			}
			if i == len(rest)-1 {
				return 0, k, true
			}
			i++ // its value
		default:
			flags = false
			pos++
		}
	}
	return pos, "", false
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
