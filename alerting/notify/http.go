package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"
	"unicode/utf8"
)

// NewHTTPClient is the client the HTTP channels share by default: no proxy
// from the environment (a centre talks to known hosts), a few idle
// connections per host.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second}}
}

// RetryStatus tells whether an HTTP answer may change on a later attempt:
// every 5xx, 408 and 429 may; other 4xx will not.
func RetryStatus(code int) bool {
	return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code < 400
}

// UnwrapURL drops the request URL from an HTTP client error: robots' URLs
// carry their access token or key in the query, which must not reach a log
// line. The caller names the host.
func UnwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// RobotEndpoint checks a chat robot's send endpoint, an http(s) URL
// without a query (the robot's credential goes into the query at each
// send), and returns it as the robot is named in errors and logs:
// scheme, host and path.
func RobotEndpoint(rawURL string) (host string, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return "", false
	}
	return u.Scheme + "://" + u.Host + u.Path, true
}

// RobotReply is the JSON answer of the DingTalk and WeCom robots.
type RobotReply struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// PostJSON POSTs a JSON body to a robot and reads its reply. retry tells
// whether a failure may pass; retryCodes are the robot's errcodes that
// do (rate limits, busy). name and host name the robot in errors.
func PostJSON(ctx context.Context, client *http.Client, timeout time.Duration, rawURL, host string, body []byte, retryCodes ...int) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("request to %s: %w", host, UnwrapURL(err))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := client.Do(req)
	if err != nil {
		return true, fmt.Errorf("POST %s: %w", host, UnwrapURL(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return true, fmt.Errorf("POST %s: reading the answer: %w", host, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return RetryStatus(resp.StatusCode), fmt.Errorf("POST %s: %s", host, resp.Status)
	}
	var r RobotReply
	if err := json.Unmarshal(b, &r); err != nil {
		return true, fmt.Errorf("POST %s: answer is not the robot's JSON: %.100q", host, b)
	}
	if r.ErrCode != 0 {
		return slices.Contains(retryCodes, r.ErrCode), fmt.Errorf("POST %s: errcode %d: %s", host, r.ErrCode, r.ErrMsg)
	}
	return false, nil
}

// Truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
