//lint:file-ignore SA1019 the classic dashboard schema is what Grafana's file provisioning loads (see grafana.go).

package grafana

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
)

// fluxAnswer runs a Flux query as Grafana's InfluxDB data source does,
// with Grafana's v record filled in, and returns the CSV answer.
func fluxAnswer(t *testing.T, d *testenv.Influxd, q string) string {
	t.Helper()
	body := "v = {timeRangeStart: -1h, timeRangeStop: now(), windowPeriod: 10s}\n" + q
	req, err := http.NewRequest(http.MethodPost, d.URL()+"/api/v2/query", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.flux")
	req.Header.Set("Accept", "application/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ans, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(ans), ",error,") {
		t.Fatalf("flux query failed: %d %s\n%s", resp.StatusCode, ans, q)
	}
	return string(ans)
}

// column returns a column of the first row of an annotated CSV answer.
func column(t *testing.T, ans, name string) string {
	t.Helper()
	if vs := columnValues(ans, name); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// columnValues returns a column of every row of an annotated CSV answer,
// table by table (each table has its header after a blank line).
func columnValues(ans, name string) []string {
	var out []string
	var header []string
	for _, line := range strings.Split(strings.ReplaceAll(ans, "\r\n", "\n"), "\n") {
		switch {
		case line == "":
			header = nil // a new table follows
			continue
		case strings.HasPrefix(line, "#"):
			continue
		}
		fields := strings.Split(line, ",")
		if header == nil {
			header = fields
			continue
		}
		if i := slices.Index(header, name); i >= 0 && i < len(fields) {
			out = append(out, fields[i])
		}
	}
	return out
}

// TestFluxQueriesRun runs every Flux query of the example dashboards
// against a real InfluxDB holding readings and centre metrics, and checks
// the gauge query shows a good value and hides it after a comm_fail
// reading, and the readings panels count both schemas: good readings
// without a quality field and, as older versions wrote, with one.
func TestFluxQueriesRun(t *testing.T) {
	d := testenv.NewInfluxd(t, "hw")
	now := time.Now()
	ms := func(ago time.Duration) int64 { return now.Add(-ago).UnixMilli() } // WriteLines writes at ms precision
	d.WriteLines(strings.Join([]string{
		fmt.Sprintf(`reading,site=jh-chem,source=nh3-tanks,point=nh3-gas-1 value=42.5 %d`, ms(3*time.Second)),
		fmt.Sprintf(`reading,site=jh-chem,source=nh3-tanks,point=nh3-gas-2,gateway=gw-tank quality="comm_fail" %d`, ms(2*time.Second)),
		// Older versions wrote quality="good" and a gateway tag.
		fmt.Sprintf(`reading,site=jh-chem,source=nh3-tanks,point=nh3-gas-3,gateway=gw-tank value=3.5,quality="good" %d`, ms(2*time.Second)),
		fmt.Sprintf(`reading,site=jh-chem,source=nh3-tanks,point=nh3-t1-level value=100,quality="over_range" %d`, ms(2*time.Second)),
		fmt.Sprintf(`hazardwatch_source_grade,site=jh-chem,source=nh3-tanks,node=hazardwatch-ingest value=3 %d`, ms(2*time.Second)),
		fmt.Sprintf(`hazardwatch_source_alarms,site=jh-chem,source=nh3-tanks,grade=red,node=hazardwatch-ingest value=2 %d`, ms(2*time.Second)),
		fmt.Sprintf(`hazardwatch_ingest_connected,node=hazardwatch-ingest value=1 %d`, ms(2*time.Second)),
		fmt.Sprintf(`hazardwatch_ingest_rejected_total,node=hazardwatch-ingest,reason=unknown_point value=1 %d`, ms(time.Minute)),
		fmt.Sprintf(`hazardwatch_ingest_rejected_total,node=hazardwatch-ingest,reason=unknown_point value=4 %d`, ms(2*time.Second)),
	}, "\n"))

	n := 0
	for _, s := range exampleSites(t) {
		db, err := Build(s, Options{Datasource: Influx, Bucket: d.Bucket()})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range db.Panels {
			if p.Panel == nil {
				continue
			}
			for _, tg := range p.Panel.Targets {
				fluxAnswer(t, d, queryText(t, tg))
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no Flux queries found")
	}

	var site1 = exampleSites(t)[0]
	for _, s := range exampleSites(t) {
		if s.ID == "jh-chem" {
			site1 = s
		}
	}
	q := fluxQueries{bucket: d.Bucket()}
	gauge := func(point string) string {
		pt := site1.Point(point).Point
		return fluxAnswer(t, d, q.value(site1.ID, pt, freshness(site1, pt)).text)
	}
	if ans := gauge("nh3-gas-1"); !strings.Contains(ans, "42.5") {
		t.Errorf("gauge of nh3-gas-1 after a good 42.5:\n%s", ans)
	}
	if ans := gauge("nh3-gas-2"); strings.TrimSpace(ans) != "" {
		t.Errorf("gauge of nh3-gas-2 after a comm_fail reading shows:\n%s", ans)
	}
	for _, p := range []struct{ point, want string }{{"nh3-gas-3", "3.5"}, {"nh3-t1-level", "100"}} {
		if ans := gauge(p.point); column(t, ans, "value") != p.want {
			t.Errorf("gauge of %s after %s reads:\n%s", p.point, p.want, ans)
		}
	}
	// Four points reported, nh3-gas-2 (comm_fail) and nh3-t1-level (over_range)
	// not good; five readings in the newest minute with the one below.
	if ans := fluxAnswer(t, d, q.reporting("jh-chem", time.Minute).text); column(t, ans, "_value") != "4" {
		t.Errorf("points reporting, want 4:\n%s", ans)
	}
	if ans := fluxAnswer(t, d, q.notGood("jh-chem", time.Minute).text); column(t, ans, "_value") != "2" {
		t.Errorf("points not good, want 2:\n%s", ans)
	}
	d.WriteLines(fmt.Sprintf(`reading,site=jh-chem,source=nh3-tanks,point=nh3-gas-1,gateway=gw-tank quality="bad" %d`, ms(time.Second)))
	if ans := gauge("nh3-gas-1"); strings.TrimSpace(ans) != "" {
		t.Errorf("gauge of nh3-gas-1 after a bad reading still shows:\n%s", ans)
	}
	if ans := fluxAnswer(t, d, q.notGood("jh-chem", time.Minute).text); column(t, ans, "_value") != "3" {
		t.Errorf("points not good after nh3-gas-1 went bad, want 3:\n%s", ans)
	}
	if got := readingsPerMinute(t, fluxAnswer(t, d, q.readingsRate("jh-chem").text)); got != 5 {
		t.Errorf("readings counted by the readings-per-second panel: %v, want 5", got)
	}
	if ans := fluxAnswer(t, d, q.grade("jh-chem", "nh3-tanks", true).text); column(t, ans, "_value") != "3" {
		t.Errorf("grade of nh3-tanks recorded at 3 reads:\n%s", ans)
	}
	if ans := fluxAnswer(t, d, q.alarms("jh-chem", "red").text); column(t, ans, "_value") != "2" {
		t.Errorf("red alarms of jh-chem recorded at 2 read:\n%s", ans)
	}
	if ans := fluxAnswer(t, d, q.alarms("jh-chem", "orange").text); strings.TrimSpace(ans) != "" {
		t.Errorf("orange alarms, never recorded, read:\n%s", ans)
	}
}

// readingsPerMinute sums the readings-per-second answer's rates back into
// readings (each row is one minute's count ÷ 60).
func readingsPerMinute(t *testing.T, ans string) float64 {
	t.Helper()
	var sum float64
	for _, v := range columnValues(ans, "_value") {
		rate, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("rate %q: %v", v, err)
		}
		sum += rate * 60
	}
	return math.Round(sum*1000) / 1000
}
