package s3fake

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The example credentials and requests of AWS's Signature Version 4
// documentation for S3 ("Signature Calculations for the Authorization
// Header" and "Signature Calculations … Transferring Payload in Multiple
// Chunks"), with the signatures it gives.
const (
	exampleKey    = "AKIAIOSFODNN7EXAMPLE"
	exampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

func exampleGet() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://examplebucket.s3.amazonaws.com/test.txt", nil)
	r.Header.Set("Range", "bytes=0-9")
	r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	return r
}

func exampleChunkedBody() string {
	return "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n" + strings.Repeat("a", 65536) + "\r\n" +
		"400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n" + strings.Repeat("a", 1024) + "\r\n" +
		"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n"
}

func examplePut(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPut, "http://s3.amazonaws.com/examplebucket/chunkObject.txt", strings.NewReader(body))
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
	r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", "66560")
	r.Header.Set("Content-Length", "66824")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
	return r
}

// serve runs one request through the signature check of a server that
// knows key and secret, in front of a handler that records what reached
// it.
func serve(t *testing.T, key, secret string, r *http.Request) (*httptest.ResponseRecorder, string, bool) {
	t.Helper()
	s := &Server{Region: DefaultRegion, keys: map[string]string{key: secret}, rejected: map[string]int{}}
	var body string
	reached := false
	h := s.verify(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		b, _ := io.ReadAll(r.Body)
		body = string(b)
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w, body, reached
}

func TestAWSDocumentedRequestsPassTheSignatureCheckWithTheirBodyIntact(t *testing.T) {
	t.Parallel()
	if w, _, reached := serve(t, exampleKey, exampleSecret, exampleGet()); !reached {
		t.Fatalf("the documented GET was refused: %d %s", w.Code, w.Body)
	}
	w, body, reached := serve(t, exampleKey, exampleSecret, examplePut(exampleChunkedBody()))
	if !reached {
		t.Fatalf("the documented chunked PUT was refused: %d %s", w.Code, w.Body)
	}
	if body != exampleChunkedBody() {
		t.Fatalf("the chunked body reached S3 changed (%d bytes, want %d)", len(body), len(exampleChunkedBody()))
	}
}

func TestRequestsS3WouldRefuseAreRefusedWithItsErrorCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		key, secret string // what the server knows
		request     func() *http.Request
		status      int
		code        string
	}{
		{"another secret", exampleKey, "not-the-secret", exampleGet, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"an unknown access key", "AKIAOTHER", exampleSecret, exampleGet, http.StatusForbidden, "InvalidAccessKeyId"},
		{"no Authorization header", exampleKey, exampleSecret, func() *http.Request {
			r := exampleGet()
			r.Header.Del("Authorization")
			return r
		}, http.StatusForbidden, "AccessDenied"},
		{"a signed header changed on the way", exampleKey, exampleSecret, func() *http.Request {
			r := exampleGet()
			r.Header.Set("Range", "bytes=0-99")
			return r
		}, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"another path", exampleKey, exampleSecret, func() *http.Request {
			r := exampleGet()
			r.URL.Path = "/other.txt"
			return r
		}, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"a query added", exampleKey, exampleSecret, func() *http.Request {
			r := exampleGet()
			r.URL.RawQuery = "acl"
			return r
		}, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"an x-amz header not signed", exampleKey, exampleSecret, func() *http.Request {
			r := exampleGet()
			r.Header.Set("X-Amz-Meta-Who", "mallory")
			return r
		}, http.StatusForbidden, "AccessDenied"},
		{"no x-amz-content-sha256", exampleKey, exampleSecret, func() *http.Request {
			r := exampleGet()
			r.Header.Del("X-Amz-Content-Sha256")
			return r
		}, http.StatusBadRequest, "InvalidRequest"},
		{"a scope in another region", exampleKey, exampleSecret, func() *http.Request {
			r := exampleGet()
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "us-east-1", "eu-west-1", 1))
			return r
		}, http.StatusBadRequest, "AuthorizationHeaderMalformed"},
		{"a body that is not the signed hash's", exampleKey, exampleSecret, func() *http.Request {
			r := exampleGet()
			r.Body = io.NopCloser(strings.NewReader("smuggled"))
			return r
		}, http.StatusBadRequest, "XAmzContentSHA256Mismatch"},
		{"a chunk changed on the way", exampleKey, exampleSecret, func() *http.Request {
			return examplePut(strings.Replace(exampleChunkedBody(), "aaaa\r\n400;", "aaab\r\n400;", 1))
		}, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"a chunked upload shorter than it says", exampleKey, exampleSecret, func() *http.Request {
			return examplePut(strings.SplitAfter(exampleChunkedBody(), "\r\n400;")[0])
		}, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"a chunked upload with another secret", exampleKey, "not-the-secret", func() *http.Request {
			return examplePut(exampleChunkedBody())
		}, http.StatusForbidden, "SignatureDoesNotMatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, _, reached := serve(t, tt.key, tt.secret, tt.request())
			var e struct {
				Code    string `xml:"Code"`
				Message string `xml:"Message"`
			}
			if err := xml.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatalf("the answer is not S3's XML error: %v: %s", err, w.Body)
			}
			if reached || w.Code != tt.status || e.Code != tt.code || e.Message == "" {
				t.Fatalf("answered %d %s (%q), reached the store %v; want %d %s", w.Code, e.Code, e.Message, reached, tt.status, tt.code)
			}
		})
	}
}

func TestCanonicalQuerySortsAndEncodesItsParameters(t *testing.T) {
	t.Parallel()
	tests := []struct{ raw, want string }{
		{"", ""},
		{"location", "location="},
		{"prefix=data%2F&list-type=2&delimiter=%2F", "delimiter=%2F&list-type=2&prefix=data%2F"},
		{"b=2&a=2&a=1", "a=1&a=2&b=2"},
		{"q=a+b%20c~", "q=a%20b%20c~"},
	}
	for _, tt := range tests {
		if got := canonicalQuery(tt.raw); got != tt.want {
			t.Errorf("canonicalQuery(%q) = %q; want %q", tt.raw, got, tt.want)
		}
	}
}

// FuzzSignatureCheckNeverPanicsAndTakesOnlyWhatItSigned feeds the check
// arbitrary Authorization headers and chunked bodies: it must never panic,
// and must never pass on a body other than the documented example's.
func FuzzSignatureCheckNeverPanicsAndTakesOnlyWhatItSigned(f *testing.F) {
	f.Add(examplePut(exampleChunkedBody()).Header.Get("Authorization"), exampleChunkedBody())
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00", "0;chunk-signature=00\r\n\r\n")
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=;;,Signature=", "ffffffff;chunk-signature=\r\n")
	f.Fuzz(func(t *testing.T, auth, body string) {
		r := examplePut(body)
		r.Header.Set("Authorization", auth)
		_, got, reached := serve(t, exampleKey, exampleSecret, r)
		if reached && got != exampleChunkedBody() {
			t.Fatalf("passed on a body that was not signed: %q", got)
		}
	})
}
