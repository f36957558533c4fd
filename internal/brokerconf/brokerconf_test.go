package brokerconf

import (
	"crypto/pbkdf2"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hazardwatch/hazardwatch/site"
)

func testSites(t *testing.T) []*site.Site {
	t.Helper()
	sites, err := site.LoadDir("../../configs/sites")
	if err != nil {
		t.Fatal(err)
	}
	return sites
}

func TestPasswdLineIsMosquittosPBKDF2(t *testing.T) {
	line, err := PasswdLine("jh-chem/gw-tank", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	user, hash, _ := strings.Cut(line, ":")
	parts := strings.Split(hash, "$") // "", "7", "101", salt, key
	if user != "jh-chem/gw-tank" || len(parts) != 5 || parts[1] != "7" || parts[2] != "101" {
		t.Fatalf("line %q", line)
	}
	salt, _ := base64.StdEncoding.DecodeString(parts[3])
	want, _ := pbkdf2.Key(sha512.New, "s3cret", salt, 101, 64)
	if parts[4] != base64.StdEncoding.EncodeToString(want) || len(salt) != 12 {
		t.Errorf("hash does not verify: %q", line)
	}
}

func TestGenerateKeepsPasswordsAndCertificates(t *testing.T) {
	dir := t.TempDir()
	o := Options{Sites: testSites(t), TLSHosts: []string{"mosquitto", "127.0.0.1"}}
	res, err := Generate(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	gateways := 0
	for _, s := range o.Sites {
		gateways += len(s.Gateways)
	}
	if len(res.Created) != len(res.Accounts) || len(res.Accounts) != gateways+2 {
		t.Fatalf("first run: %d accounts, %d created", len(res.Accounts), len(res.Created))
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	pw, ca, srv := read("secrets/gateways/jh-chem/gw-tank"), read("tls/ca.pem"), read("tls/server.pem")
	if st, _ := os.Stat(filepath.Join(dir, "secrets/gateways/jh-chem/gw-tank")); st.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v, want 0600", st.Mode().Perm())
	}
	if strings.Contains(read("passwd"), strings.TrimSpace(pw)) || strings.Contains(read("acl"), strings.TrimSpace(pw)) {
		t.Error("a password in clear in passwd or acl")
	}
	res, err = Generate(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Created) != 0 || read("secrets/gateways/jh-chem/gw-tank") != pw || read("tls/ca.pem") != ca || read("tls/server.pem") != srv {
		t.Error("a second run changed passwords or certificates")
	}
	// New host names: a new server certificate from the same CA.
	o.TLSHosts = append(o.TLSHosts, "broker.example")
	if _, err := Generate(dir, o); err != nil {
		t.Fatal(err)
	}
	if read("tls/ca.pem") != ca || read("tls/server.pem") == srv {
		t.Error("changed hosts: want the same CA and a new server certificate")
	}
	block, _ := pem.Decode([]byte(read("tls/server.pem")))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyHostname("broker.example"); err != nil {
		t.Error(err)
	}
}

func TestACLGivesEachAccountItsOwn(t *testing.T) {
	accounts, err := Accounts(Options{Sites: testSites(t), Viewers: []string{"wall"}})
	if err != nil {
		t.Fatal(err)
	}
	acl := ACL(accounts)
	for _, want := range []string{
		"user jh-chem/gw-tank\ntopic write hazardwatch/v1/jh-chem/gw-tank/telemetry\ntopic write hazardwatch/v1/jh-chem/gw-tank/state\ntopic read hazardwatch/v1/jh-chem/gw-tank/ack\n",
		"user hazardwatch-centre\ntopic read hazardwatch/v1/+/+/telemetry\ntopic read hazardwatch/v1/+/+/state\ntopic write hazardwatch/v1/+/alarms\ntopic write hazardwatch/v1/+/sources/+/grade\ntopic readwrite hazardwatch/v1/+/+/ack\n",
		"user wall\ntopic read hazardwatch/v1/#\n",
	} {
		if !strings.Contains(acl, want) {
			t.Errorf("ACL lacks\n%s\nin\n%s", want, acl)
		}
	}
	if strings.Contains(acl, "hazardwatch-viewer") {
		t.Error("the default viewer is there though viewers were given")
	}
	for _, bad := range []Options{
		{Sites: testSites(t), Centre: "has space"},
		{Sites: testSites(t), Viewers: []string{"a:b"}},
		{Sites: testSites(t), Viewers: []string{"../../etc"}},
		{Sites: testSites(t), Viewers: []string{"hazardwatch-centre"}},
	} {
		if _, err := Accounts(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
