package testenv

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
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSFiles are PEM files of a throw-away certificate authority, a server
// certificate for 127.0.0.1 and a client certificate, all signed by it.
type TLSFiles struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

// NewTLSFiles writes a fresh CA, server and client certificate into a temp
// dir.
func NewTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, caCert := newCert(t, "HazardWatch test CA", nil, nil, true)
	srvKey, srvCert := newCert(t, "127.0.0.1", caCert, caKey, false)
	cliKey, cliCert := newCert(t, "gateway", caCert, caKey, false)
	f := TLSFiles{
		CA:         writePEM(t, dir, "ca.pem", "CERTIFICATE", caCert.Raw),
		ServerCert: writePEM(t, dir, "server.pem", "CERTIFICATE", srvCert.Raw),
		ServerKey:  writeKey(t, dir, "server.key", srvKey),
		ClientCert: writePEM(t, dir, "client.pem", "CERTIFICATE", cliCert.Raw),
		ClientKey:  writeKey(t, dir, "client.key", cliKey),
	}
	return f
}

func newCert(t testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatalf("create certificate %s: %v", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeKey(t testing.TB, dir, name string, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name, "EC PRIVATE KEY", der)
}

// MosquittoTLS starts a private Mosquitto that speaks only TLS and requires
// a client certificate signed by the files' CA; its URL is ssl://.
func MosquittoTLS(t testing.TB, f TLSFiles) *Broker {
	t.Helper()
	port := FreePort(t)
	return startMosquitto(t, port, "ssl", func(dir string) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nlog_dest file %s\n",
			port, f.CA, f.ServerCert, f.ServerKey, filepath.Join(dir, "mosquitto.log"))
	})
}
