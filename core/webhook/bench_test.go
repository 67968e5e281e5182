package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkReceiveGitHubDelivery measures receiving one signed GitHub
// deployment delivery (about 7 KB) end to end, as GitHub waits for it:
// budget, body read, signature check, and the durable write of the delivery
// with its handing to two subscribed plugins into a real SQLite store,
// until the 202. The plugins' handling is not in it: it happens after.
func BenchmarkReceiveGitHubDelivery(b *testing.B) {
	const secret = "bench secret"
	body, err := os.ReadFile("testdata/github/deployment.json")
	if err != nil {
		b.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	g, _ := newReceiver(b, secret, "deploy", "cistatus")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		req := httptest.NewRequest(http.MethodPost, "/webhooks/github", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "deployment")
		req.Header.Set("X-GitHub-Delivery", "bench-"+strconv.Itoa(i))
		req.Header.Set("X-Hub-Signature-256", sig)
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("answered %d %s", w.Code, w.Body)
		}
	}
}
