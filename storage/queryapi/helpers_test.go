package queryapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
)

const testSiteYAML = `
id: t1
name: Test chemicals
enterprise_code: "91320612MA1X7H2K3Q"
region: "320612"
gateways:
  - id: gw1
    devices:
      - id: dev1
        address: 127.0.0.1:15099
sources:
  - id: s1
    name: Ammonia tanks
    type: tank_farm
    grade: 2
    points:
      - id: p1
        name: NH3 detector 1
        kind: toxic_gas
        gas: NH3
        unit: ppm
        range: [0, 100]
        modbus: {device: dev1, address: 0}
        limits: {h: 40, hh: 80}
      - id: p2
        name: Tank 1 level
        kind: level
        unit: "%"
        range: [0, 100]
        modbus: {device: dev1, address: 1}
        limits: {ll: 5, l: 10, h: 85, hh: 90}
      - id: p3
        name: Tank 1 pressure
        kind: pressure
        unit: MPa
        range: [0, 2.5]
        modbus: {device: dev1, address: 2}
`

// fixture is a real embedded store holding p1 every 10 s for ten minutes
// (value i at base + i*10s), p2 good then comm_fail, and nothing for p3.
type fixture struct {
	store *embedded.Store
	site  *site.Site
	base  time.Time
	p1    []storage.Sample
	p2    []storage.Sample
}

const p1Samples = 60

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, err := site.Parse("t1.yaml", []byte(testSiteYAML))
	if err != nil {
		t.Fatalf("parse test site: %v", err)
	}
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{store: store, site: s, base: time.Now().Add(-30 * time.Minute).Truncate(time.Minute).UTC()}
	for i := range p1Samples {
		f.p1 = append(f.p1, storage.Sample{Site: "t1", Gateway: "gw1", Source: "s1", Point: "p1",
			Time: f.base.Add(time.Duration(i) * 10 * time.Second), Value: float64(i), HasValue: true, Quality: protocol.Good})
	}
	f.p2 = []storage.Sample{
		{Site: "t1", Gateway: "gw1", Source: "s1", Point: "p2", Time: f.base, Value: 55.5, HasValue: true, Quality: protocol.Good},
		{Site: "t1", Gateway: "gw1", Source: "s1", Point: "p2", Time: f.base.Add(time.Minute), Quality: protocol.CommFail},
	}
	if err := store.Append(context.Background(), append(append([]storage.Sample{}, f.p1...), f.p2...)); err != nil {
		t.Fatalf("append: %v", err)
	}
	return f
}

// get fetches url from a real HTTP server and decodes the JSON body.
func get(t *testing.T, srv *httptest.Server, path string, into any) int {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return decode(t, resp, path, into)
}

func postForm(t *testing.T, srv *httptest.Server, path string, form url.Values, into any) int {
	t.Helper()
	resp, err := http.Post(srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return decode(t, resp, path, into)
}

func decode(t *testing.T, resp *http.Response, path string, into any) int {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: content type %q, want JSON", path, ct)
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("decode %s: %v\n%s", path, err, body)
	}
	return resp.StatusCode
}

func rfc(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339)) }
