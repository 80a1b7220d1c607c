package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/framework"
)

// certPair is a PEM certificate and key, signed by ca (self-signed when
// ca is nil).
type certPair struct {
	cert, key []byte
	x509      *x509.Certificate
	priv      *ecdsa.PrivateKey
}

func newCert(t *testing.T, cn string, ca *certPair, server bool) *certPair {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else if ca != nil {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	}
	parent, signer := tmpl, priv
	if ca != nil {
		parent, signer = ca.x509, ca.priv
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &priv.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(priv)
	return &certPair{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
		x509: c, priv: priv,
	}
}

// With tls_cert, tls_key and tls_ca the URLs are https and only clients
// with a certificate from the CA get a session.
func TestStreamingTLS(t *testing.T) {
	framework.RequireRoot(t)
	dir := t.TempDir()
	ca := newCert(t, "berth-test-ca", nil, false)
	srv := newCert(t, "127.0.0.1", ca, true)
	client := newCert(t, "kubelet", ca, false)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	conf := fmt.Sprintf("[stream]\ntls_cert = %q\ntls_key = %q\ntls_ca = %q\n",
		write("srv.crt", srv.cert), write("srv.key", srv.key), write("ca.crt", ca.cert))

	e := startContainerEnvWith(t, conf)
	handlers := handlerNames(t)
	if len(handlers) == 0 {
		t.Skip("no runtime handler")
	}
	pod := e.pod(t, handlers[0], runtimeapi.NamespaceMode_CONTAINER)
	id := e.run(t, pod, e.config("tls", "sleep", "3600"))

	exec := func(withCert bool) (string, error) {
		u := e.execURL(t, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"echo", "over tls"}, Stdout: true, Stderr: true})
		if !strings.HasPrefix(u, "https://127.0.0.1:") {
			t.Fatalf("URL %q is not https on loopback", u)
		}
		pu, _ := url.Parse(u)
		tc := rest.TLSClientConfig{CAData: ca.cert}
		if withCert {
			tc.CertData, tc.KeyData = client.cert, client.key
		}
		ex, err := remotecommand.NewSPDYExecutor(&rest.Config{Host: "https://" + pu.Host, TLSClientConfig: tc}, "POST", pu)
		if err != nil {
			t.Fatal(err)
		}
		var out syncBuffer
		err = ex.StreamWithContext(e.d.Ctx(t), remotecommand.StreamOptions{Stdout: &out, Stderr: &out})
		return out.String(), err
	}
	if out, err := exec(true); err != nil || out != "over tls\n" {
		t.Errorf("exec with a client certificate: %q, %v", out, err)
	}
	if _, err := exec(false); err == nil {
		t.Errorf("exec without a client certificate worked")
	}
}
