package redact

import (
	"strings"
	"testing"
)

func TestURLMasksPasswordsAndSecretParameters(t *testing.T) {
	for in, want := range map[string]string{
		"tcp://gw:hunter2@broker:1883":                              "tcp://gw:xxxxx@broker:1883",
		"tcp://gw@broker:1883":                                      "tcp://gw@broker:1883",
		"postgres://hw:hunter2@db:5432/hw?sslmode=require":          "postgres://hw:xxxxx@db:5432/hw?sslmode=require",
		"https://oapi.dingtalk.com/robot/send?access_token=hunter2": "https://oapi.dingtalk.com/robot/send?access_token=xxxxx",
		"https://example.org/hook?Sign=hunter2&x=1":                 "https://example.org/hook?Sign=xxxxx&x=1",
		"ssl://broker:8883":                                         "ssl://broker:8883",
		"not a url :// user:hunter2@host":                           "xxxxx@host",
	} {
		got := URL(in)
		if got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "hunter2") {
			t.Errorf("URL(%q) shows the secret", in)
		}
	}
	if !HasPassword("tcp://a:b@h") || HasPassword("tcp://a@h") || HasPassword("tcp://h") {
		t.Error("HasPassword")
	}
}
