package runner

// A small command-line parser, hand-written on purpose: runc's users (conmon,
// CRI-O, containerd's go-runc, kubelet tests) call it with urfave/cli v1
// conventions that the standard flag package does not follow (flags after the
// container id, "-b" and "--bundle" as one flag, repeated "--env" flags, an
// exec command line that is not parsed at all), and urfave/cli itself would be
// a dependency with a costly init for a binary whose start-up time we measure.

import (
	"fmt"
	"strconv"
	"strings"
)

type flagKind int

const (
	boolFlag flagKind = iota
	stringFlag
	intFlag
	sliceFlag
)

// flagDef describes one flag; names holds the long name first, then aliases.
type flagDef struct {
	names []string
	kind  flagKind
	def   string
	usage string
}

// flagSet holds the definitions and, after parse, the values of one command.
type flagSet struct {
	defs    []flagDef
	byName  map[string]*flagDef
	values  map[string][]string // by long name; bool flags hold "true"/"false"
	args    []string
	inOrder bool // stop at the first positional argument (exec, ps)
}

func newFlagSet(inOrder bool, defs ...flagDef) *flagSet {
	fs := &flagSet{defs: defs, byName: map[string]*flagDef{}, values: map[string][]string{}, inOrder: inOrder}
	for i := range fs.defs {
		for _, n := range fs.defs[i].names {
			fs.byName[n] = &fs.defs[i]
		}
	}
	return fs
}

func flagB(name, usage string) flagDef {
	return flagDef{names: strings.Split(name, ","), kind: boolFlag, usage: usage}
}
func flagS(name, def, usage string) flagDef {
	return flagDef{names: strings.Split(name, ","), kind: stringFlag, def: def, usage: usage}
}
func flagI(name, usage string) flagDef {
	return flagDef{names: strings.Split(name, ","), kind: intFlag, usage: usage}
}
func flagL(name, usage string) flagDef {
	return flagDef{names: strings.Split(name, ","), kind: sliceFlag, usage: usage}
}

// errHelp is returned by parse for -h/--help.
var errHelp = fmt.Errorf("help requested")

// parse reads args. Flags may come before or between positional arguments
// (urfave/cli's reordering) unless inOrder is set; "--" ends the flags.
func (fs *flagSet) parse(args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			fs.args = append(fs.args, args[i+1:]...)
			return nil
		}
		if len(a) < 2 || a[0] != '-' {
			if fs.inOrder {
				fs.args = append(fs.args, args[i:]...)
				return nil
			}
			fs.args = append(fs.args, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		value, hasValue := "", false
		if k := strings.IndexByte(name, '='); k >= 0 {
			name, value, hasValue = name[:k], name[k+1:], true
		}
		if name == "h" || name == "help" {
			return errHelp
		}
		def, ok := fs.byName[name]
		if !ok {
			return fmt.Errorf("flag provided but not defined: -%s", name)
		}
		long := def.names[0]
		if def.kind == boolFlag {
			if !hasValue {
				value = "true"
			}
			if _, err := strconv.ParseBool(value); err != nil {
				return fmt.Errorf("invalid boolean value %q for -%s: %v", value, name, err)
			}
			fs.values[long] = []string{value}
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return fmt.Errorf("flag needs an argument: -%s", name)
			}
			i++
			value = args[i]
		}
		if def.kind == intFlag {
			if _, err := strconv.Atoi(value); err != nil {
				return fmt.Errorf("invalid value %q for flag -%s: parse error", value, name)
			}
		}
		if def.kind == sliceFlag {
			fs.values[long] = append(fs.values[long], value)
		} else {
			fs.values[long] = []string{value}
		}
	}
	return nil
}

func (fs *flagSet) long(name string) string {
	if d, ok := fs.byName[name]; ok {
		return d.names[0]
	}
	panic("runner: undefined flag " + name)
}

// IsSet reports whether the flag was given on the command line.
func (fs *flagSet) IsSet(name string) bool {
	_, ok := fs.values[fs.long(name)]
	return ok
}

func (fs *flagSet) String(name string) string {
	if v := fs.values[fs.long(name)]; len(v) > 0 {
		return v[len(v)-1]
	}
	return fs.byName[name].def
}

func (fs *flagSet) Bool(name string) bool {
	b, _ := strconv.ParseBool(fs.String(name))
	return b
}

func (fs *flagSet) Int(name string) int {
	n, _ := strconv.Atoi(fs.String(name))
	return n
}

func (fs *flagSet) Slice(name string) []string { return fs.values[fs.long(name)] }

// Set overrides a value (used to make --pid-file absolute, as runc does).
func (fs *flagSet) Set(name, value string) { fs.values[fs.long(name)] = []string{value} }

func (fs *flagSet) usage() string {
	var b strings.Builder
	for _, d := range fs.defs {
		var names []string
		for _, n := range d.names {
			if len(n) == 1 {
				names = append(names, "-"+n)
			} else {
				names = append(names, "--"+n)
			}
		}
		arg := ""
		if d.kind != boolFlag {
			arg = " value"
		}
		fmt.Fprintf(&b, "   %-32s %s\n", strings.Join(names, ", ")+arg, d.usage)
	}
	return b.String()
}
