package guardrail

import (
	"strings"
	"testing"
)

// Test fixtures: fake credentials in the shapes detectors look for. None is
// a real secret.
var (
	fakeAWS    = "AKIAZ7QW3RTY5UIOP2LK"
	fakeJWT    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	fakePEM    = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmwIDAQABAoIBAQCs\n-----END RSA PRIVATE KEY-----"
	fakeSecret = "Kq8vZ3xR7pW2mN9tB4yL6cF1hJ5dS0gA+eU"
)

func TestDetectors(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if s.Rules() < 100 {
		t.Fatalf("only %d gitleaks rules loaded", s.Rules())
	}
	for _, tc := range []struct {
		name, value, typ string
	}{
		{"email", "contact alice.smith+ops@example.com today", Email},
		{"card with spaces", "card: 4111 1111 1111 1111 exp 12/29", PaymentCard},
		{"card with dashes", "5500-0000-0000-0004", PaymentCard},
		{"aws key", "aws_access_key_id = " + fakeAWS, CloudAccessKey},
		{"private key", "key:\n" + fakePEM + "\n", PrivateKey},
		{"jwt", "Authorization: Bearer " + fakeJWT, JWT},
		{"high entropy", "token=" + fakeSecret, ""},
	} {
		fs := s.Scan("body", tc.value)
		if len(fs) == 0 {
			t.Errorf("%s: no finding in %q", tc.name, tc.value)
			continue
		}
		f := fs[0]
		if tc.typ != "" && f.Type != tc.typ {
			t.Errorf("%s: type %s (rule %s), want %s", tc.name, f.Type, f.Rule, tc.typ)
		}
		if tc.typ == "" && f.Type != Secret && f.Type != HighEntropySecret {
			t.Errorf("%s: type %s, want a secret type", tc.name, f.Type)
		}
		if f.Arg != "body" || f.Offset < 0 || f.Offset+f.Length > len(tc.value) || f.Length == 0 {
			t.Errorf("%s: bad position %+v", tc.name, f)
		}
	}
	for _, clean := range []string{
		"deploy the demo service to staging",
		"sha256:" + strings.Repeat("ab12", 16),
		"order 4111 1111 1111 1112 is not a card (Luhn fails)",
		"2026-11-21T10:00:00Z 1234567890",
		"spiffe://dev.ztlog.local/agent/demo",
	} {
		if fs := s.Scan("q", clean); len(fs) != 0 {
			t.Errorf("false positive in %q: %+v", clean, fs)
		}
	}
}

func TestScanJSONPathsAndNoValues(t *testing.T) {
	s, _ := New()
	fs, err := s.ScanJSON([]byte(`{"to":["bob@example.com","x"],"headers":{"authorization":"Bearer ` + fakeJWT + `"},"n":4111111111111111,"ok":"fine"}`))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range fs {
		got[f.Arg] = f.Type
	}
	want := map[string]string{"to[0]": Email, "headers.authorization": JWT, "n": PaymentCard}
	for arg, typ := range want {
		if got[arg] != typ {
			t.Errorf("%s: %q, want %s (all: %+v)", arg, got[arg], typ, fs)
		}
	}
	if len(fs) != len(want) {
		t.Errorf("findings %+v", fs)
	}
}

func FuzzScan(f *testing.F) {
	s, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Add("alice@example.com 4111 1111 1111 1111 " + fakeAWS)
	f.Fuzz(func(t *testing.T, v string) {
		for _, fd := range s.Scan("a", v) {
			if fd.Offset < 0 || fd.Length <= 0 || fd.Offset+fd.Length > len(v) || fd.Type == "" {
				t.Fatalf("bad finding %+v for %q", fd, v)
			}
		}
	})
}
