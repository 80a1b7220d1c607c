// Command hostname stands in for Debian's hostname in the suite's
// jessie-dnsutils image (Debian with dnsutils): `hostname` prints the
// kernel's host name and `hostname -f` the fully qualified one, which
// Debian's finds through the resolver, where /etc/hosts comes first: the
// first name of the hosts line that names the host (the kubelet writes
// "<ip> <pod>.<subdomain>.<namespace>.svc.<domain> <pod>" there for a
// pod with a subdomain). Without such a line it asks DNS for the name's
// canonical name, and prints the short name when that fails too.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
)

func main() {
	name, err := os.Hostname()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hostname: %v\n", err)
		os.Exit(1)
	}
	switch {
	case len(os.Args) == 1:
		fmt.Println(name)
	case len(os.Args) == 2 && (os.Args[1] == "-f" || os.Args[1] == "--fqdn" || os.Args[1] == "--long"):
		fmt.Println(fqdn(name))
	default:
		fmt.Fprintf(os.Stderr, "hostname (stand-in): only no option and -f are supported, got %q\n", os.Args[1:])
		os.Exit(2)
	}
}

func fqdn(name string) string {
	if f, err := os.Open("/etc/hosts"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), "#")
			fields := strings.Fields(line)
			if len(fields) < 2 {
				continue
			}
			for _, n := range fields[1:] {
				if n == name {
					return fields[1]
				}
			}
		}
	}
	if cname, err := net.LookupCNAME(name); err == nil && cname != "" {
		return strings.TrimSuffix(cname, ".")
	}
	return name
}
