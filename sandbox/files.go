package sandbox

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

// hostnameRE is an RFC 1123 hostname, absolute (a final ".") or not;
// the kernel allows 64 bytes. The kubelet sends an absolute one for a
// pod with setHostnameAsFQDN on a node with no cluster domain:
// "<pod>.<subdomain>.<namespace>.svc.".
var hostnameRE = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*\.?$`)

const maxHostname = 64

func validateHostname(h string) error {
	if len(h) > maxHostname || !hostnameRE.MatchString(h) {
		return errdefs.Invalidf("hostname %q: not a valid hostname (RFC 1123, at most %d characters)", h, maxHostname)
	}
	return nil
}

// validateDNS refuses what would not make a well-formed resolv.conf: a
// server that is not an IP, a search domain or option with white space.
func validateDNS(dns *runtimeapi.DNSConfig) error {
	for _, s := range dns.GetServers() {
		if net.ParseIP(s) == nil {
			return errdefs.Invalidf("dns_config.servers: %q is not an IP address", s)
		}
	}
	for _, s := range dns.GetSearches() {
		if s == "" || strings.ContainsAny(s, " \t\r\n#;") {
			return errdefs.Invalidf("dns_config.searches: %q is not a domain", s)
		}
	}
	for _, o := range dns.GetOptions() {
		if o == "" || strings.ContainsAny(o, " \t\r\n#;") {
			return errdefs.Invalidf("dns_config.options: %q is not a resolver option", o)
		}
	}
	return nil
}

// resolvConf is the pod's resolv.conf: the request's DNS config, or the
// host's file when the request sets none (as CRI-O does).
func resolvConf(dns *runtimeapi.DNSConfig, hostResolvConf string) ([]byte, error) {
	if len(dns.GetServers()) == 0 && len(dns.GetSearches()) == 0 && len(dns.GetOptions()) == 0 {
		b, err := os.ReadFile(hostResolvConf)
		if err != nil {
			return nil, fmt.Errorf("host resolv.conf: %w", err)
		}
		return b, nil
	}
	var b bytes.Buffer
	if len(dns.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.Searches, " "))
	}
	for _, s := range dns.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.Options, " "))
	}
	return b.Bytes(), nil
}

// hostsFile is the pod's /etc/hosts: localhost, the usual IPv6 names, and
// the pod's hostname on each of its IPs. A host-network pod gets the
// host's file, as kubelet gives it.
func hostsFile(hostname string, ips []string, hostNetwork bool) ([]byte, error) {
	if hostNetwork {
		b, err := os.ReadFile("/etc/hosts")
		if err != nil {
			return nil, fmt.Errorf("host /etc/hosts: %w", err)
		}
		return b, nil
	}
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	for _, ip := range ips {
		fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
	}
	return b.Bytes(), nil
}
