package redact

import "testing"

func BenchmarkString(b *testing.B) {
	r := New("s3cr3t-token-value", "hunter22")
	for _, c := range []struct{ name, s string }{
		{"lower-clean", "hello alice, deploying demo/main to staging now"},
		{"upper-clean", "Hello Alice, Deploying demo/main to Staging now"},
		{"upper-secret", "Hello Alice, token S3CR3T-token-value here"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = r.String(c.s)
			}
		})
	}
	b.Run("bytes-upper-clean", func(b *testing.B) {
		b.ReportAllocs()
		data := []byte("Step 3/7: Building Image for demo/main at abcdef\n")
		for b.Loop() {
			_ = r.Bytes(data)
		}
	})
}
