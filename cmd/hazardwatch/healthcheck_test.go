package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHealthcheckExitCodes(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !ready {
			http.Error(w, "not ready: broker", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"healthcheck", srv.URL + "/readyz"}, &out, &errOut); code != 0 {
		t.Errorf("ready service: exit %d (%s), want 0", code, errOut.String())
	}
	ready = false
	if code := dispatch([]string{"healthcheck", srv.URL + "/readyz"}, &out, &errOut); code != 1 || !bytes.Contains(errOut.Bytes(), []byte("503")) {
		t.Errorf("unready service: exit %d, stderr %q; want 1 naming the 503", code, errOut.String())
	}
	srv.Close()
	if code := dispatch([]string{"healthcheck", srv.URL + "/readyz"}, &out, &errOut); code != 1 {
		t.Errorf("service down: exit %d, want 1", code)
	}
	if code := dispatch([]string{"healthcheck"}, &out, &errOut); code != 2 {
		t.Errorf("no URL: exit %d, want 2", code)
	}
}
