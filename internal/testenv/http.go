package testenv

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// Call sends one request with client to url, with body and the headers
// given as name, value pairs, and returns the answer's status and body;
// a request that gets no answer fails the test.
func Call(t testing.TB, client *http.Client, method, url, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
