// Package s3fake is an S3-compatible server for tests: gofakes3 on an
// in-memory backend, served by httptest on 127.0.0.1, behind a check of
// every request's AWS Signature Version 4, as S3 itself does. A request
// signed with another secret is answered 403 SignatureDoesNotMatch, an
// unknown access key 403 InvalidAccessKeyId, an unsigned one 403
// AccessDenied, each with S3's XML error body; the payload's hash, or each
// chunk's signature of a streamed upload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD,
// what minio-go and so restic send over plain HTTP), is checked too. Only
// path-style addressing is served (http://127.0.0.1:port/bucket/key), so
// clients need their path lookup (restic: -o s3.bucket-lookup=path).
// What it does not serve it refuses, never takes unchecked: presigned
// (query-string) requests get 403 AccessDenied, the trailer payload modes
// 501 NotImplemented. A request's clock is checked by gofakes3 (15 minutes,
// RequestTimeTooSkewed).
//
// The tests of the backup plugin and the end-to-end tests of the bot use
// it; it is no part of the plugin.
package s3fake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// DefaultRegion is the region a request's credential scope must name
// (Server.Region).
const DefaultRegion = "us-east-1"

// Server is the fake S3.
type Server struct {
	// URL is the endpoint, http://127.0.0.1:port.
	URL string
	// Region is the region a request's credential scope must name.
	Region string

	srv     *httptest.Server
	backend *s3mem.Backend
	keys    map[string]string // access key id → secret access key; fixed by New

	// rejected counts the requests refused for their authentication, by
	// S3 error code.
	rejectedMu sync.Mutex
	rejected   map[string]int
	accepted   atomic.Int64
}

// New starts a server that knows one access key and its secret, on
// 127.0.0.1 (httptest's loopback listener). Close stops it.
func New(accessKey, secretKey string) (*Server, error) {
	if accessKey == "" || secretKey == "" {
		return nil, fmt.Errorf("s3fake: an access key and its secret are required")
	}
	s := &Server{Region: DefaultRegion, backend: s3mem.New(), keys: map[string]string{accessKey: secretKey}, rejected: map[string]int{}}
	// Buckets are made by CreateBucket or a client's PUT, never by a
	// request to one that is missing; path-style addressing only.
	faker := gofakes3.New(s.backend, gofakes3.WithAutoBucket(false), gofakes3.WithHostBucket(false))
	s.srv = httptest.NewServer(s.verify(faker.Server()))
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// CreateBucket makes a bucket, as an operator does before pointing restic
// at it.
func (s *Server) CreateBucket(name string) error { return s.backend.CreateBucket(name) }

// Objects lists the keys under prefix in bucket; an error when the bucket
// does not exist.
func (s *Server) Objects(bucket, prefix string) ([]string, error) {
	p := gofakes3.NewPrefix(&prefix, nil)
	list, err := s.backend.ListBucket(bucket, &p, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list.Contents))
	for _, c := range list.Contents {
		out = append(out, c.Key)
	}
	return out, nil
}

// Rejected is how many requests were refused with the S3 error code
// (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied, …).
func (s *Server) Rejected(code string) int {
	s.rejectedMu.Lock()
	defer s.rejectedMu.Unlock()
	return s.rejected[code]
}

// Accepted is how many requests passed the signature check.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// s3Error is S3's XML error body.
type s3Error struct {
	XMLName        xml.Name `xml:"Error"`
	Code           string   `xml:"Code"`
	Message        string   `xml:"Message"`
	AWSAccessKeyID string   `xml:"AWSAccessKeyId,omitempty"`
	StringToSign   string   `xml:"StringToSign,omitempty"`
	SignatureGiven string   `xml:"SignatureProvided,omitempty"`
	CanonicalReq   string   `xml:"CanonicalRequest,omitempty"`
	Region         string   `xml:"Region,omitempty"`
	RequestID      string   `xml:"RequestId"`
	status         int
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, e *s3Error) {
	s.rejectedMu.Lock()
	s.rejected[e.Code]++
	s.rejectedMu.Unlock()
	e.RequestID = "s3fake"
	body, _ := xml.Marshal(e)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append([]byte(xml.Header), body...))
	}
}

// Signature Version 4 constants.
const (
	algorithm       = "AWS4-HMAC-SHA256"
	chunkAlgorithm  = "AWS4-HMAC-SHA256-PAYLOAD"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	streamingSigned = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	amzDateLayout   = "20060102T150405Z"
)

var emptySHA256 = hex.EncodeToString(sha256.New().Sum(nil))

// authorization is a parsed Authorization header.
type authorization struct {
	accessKey, date, region, service, terminal string
	signedHeaders                              []string
	signature                                  string
}

func parseAuthorization(h string) (authorization, bool) {
	var a authorization
	rest, ok := strings.CutPrefix(h, algorithm+" ")
	if !ok {
		return a, false
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, false
		}
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 {
				return a, false
			}
			a.accessKey, a.date, a.region, a.service, a.terminal = f[0], f[1], f[2], f[3], f[4]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	return a, a.accessKey != "" && len(a.signedHeaders) > 0 && a.signature != ""
}

// verify wraps next with the checks S3 makes of a request's signature.
func (s *Server) verify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		if header == "" {
			msg := "Access Denied"
			if r.URL.Query().Has("X-Amz-Signature") {
				msg = "query-string (presigned) authentication is not served by s3fake"
			}
			s.fail(w, r, &s3Error{Code: "AccessDenied", Message: msg, status: http.StatusForbidden})
			return
		}
		a, ok := parseAuthorization(header)
		if !ok {
			s.fail(w, r, &s3Error{Code: "AuthorizationHeaderMalformed", Message: "The authorization header is malformed; it is not AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…", status: http.StatusBadRequest})
			return
		}
		secret, known := s.keys[a.accessKey]
		amzDate := r.Header.Get("X-Amz-Date")
		switch {
		case !known:
			s.fail(w, r, &s3Error{Code: "InvalidAccessKeyId", Message: "The AWS Access Key Id you provided does not exist in our records.", AWSAccessKeyID: a.accessKey, status: http.StatusForbidden})
			return
		case a.region != s.Region:
			s.fail(w, r, &s3Error{Code: "AuthorizationHeaderMalformed", Message: fmt.Sprintf("The authorization header is malformed; the region '%s' is wrong; expecting '%s'", a.region, s.Region), Region: s.Region, status: http.StatusBadRequest})
			return
		case a.service != "s3" || a.terminal != "aws4_request":
			s.fail(w, r, &s3Error{Code: "AuthorizationHeaderMalformed", Message: "The authorization header is malformed; the credential scope must end in s3/aws4_request", status: http.StatusBadRequest})
			return
		case len(amzDate) != len(amzDateLayout):
			s.fail(w, r, &s3Error{Code: "AccessDenied", Message: "AWS authentication requires a valid Date or x-amz-date header", status: http.StatusForbidden})
			return
		case amzDate[:8] != a.date:
			s.fail(w, r, &s3Error{Code: "AuthorizationHeaderMalformed", Message: "The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date.", status: http.StatusBadRequest})
			return
		}
		payloadHash := r.Header.Get("X-Amz-Content-Sha256")
		if payloadHash == "" {
			s.fail(w, r, &s3Error{Code: "InvalidRequest", Message: "Missing required header for this request: x-amz-content-sha256", status: http.StatusBadRequest})
			return
		}
		signed := map[string]bool{}
		for _, h := range a.signedHeaders {
			signed[h] = true
		}
		if !signed["host"] {
			s.fail(w, r, &s3Error{Code: "AccessDenied", Message: "The host header must be signed", status: http.StatusForbidden})
			return
		}
		for name := range r.Header {
			if n := strings.ToLower(name); strings.HasPrefix(n, "x-amz-") && !signed[n] {
				s.fail(w, r, &s3Error{Code: "AccessDenied", Message: "There were headers present in the request which were not signed: " + n, status: http.StatusForbidden})
				return
			}
		}

		canonical := canonicalRequest(r, a.signedHeaders, payloadHash)
		scope := strings.Join([]string{a.date, a.region, a.service, a.terminal}, "/")
		toSign := strings.Join([]string{algorithm, amzDate, scope, hexSHA256([]byte(canonical))}, "\n")
		key := signingKey(secret, a.date, a.region, a.service)
		want := hex.EncodeToString(hmacSHA256(key, []byte(toSign)))
		if !hmac.Equal([]byte(want), []byte(a.signature)) {
			s.fail(w, r, &s3Error{
				Code:           "SignatureDoesNotMatch",
				Message:        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
				AWSAccessKeyID: a.accessKey, StringToSign: toSign, SignatureGiven: a.signature, CanonicalReq: canonical,
				status: http.StatusForbidden,
			})
			return
		}

		// The payload: its hash, or each chunk's signature, before the
		// object is stored.
		switch payloadHash {
		case unsignedPayload:
		case streamingSigned:
			body, err := io.ReadAll(r.Body)
			if err != nil {
				s.fail(w, r, &s3Error{Code: "IncompleteBody", Message: "You did not provide the number of bytes specified by the Content-Length HTTP header", status: http.StatusBadRequest})
				return
			}
			n, err := verifyChunks(body, a.signature, key, amzDate, scope)
			if err != nil {
				s.fail(w, r, &s3Error{Code: "SignatureDoesNotMatch", Message: "The request signature we calculated does not match the signature you provided: " + err.Error(), AWSAccessKeyID: a.accessKey, status: http.StatusForbidden})
				return
			}
			if decoded := r.Header.Get("X-Amz-Decoded-Content-Length"); decoded != strconv.Itoa(n) {
				s.fail(w, r, &s3Error{Code: "IncompleteBody", Message: fmt.Sprintf("the chunks carry %d bytes, x-amz-decoded-content-length says %s", n, decoded), status: http.StatusBadRequest})
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		default:
			if len(payloadHash) != 64 {
				s.fail(w, r, &s3Error{Code: "NotImplemented", Message: "s3fake does not serve the payload mode " + payloadHash, status: http.StatusNotImplemented})
				return
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				s.fail(w, r, &s3Error{Code: "IncompleteBody", Message: "You did not provide the number of bytes specified by the Content-Length HTTP header", status: http.StatusBadRequest})
				return
			}
			if hexSHA256(body) != payloadHash {
				s.fail(w, r, &s3Error{Code: "XAmzContentSHA256Mismatch", Message: "The provided 'x-amz-content-sha256' header does not match what was computed.", status: http.StatusBadRequest})
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		s.accepted.Add(1)
		next.ServeHTTP(w, r)
	})
}

// canonicalRequest is the request in SigV4's canonical form: method, URI,
// query, the signed headers and the payload's hash.
func canonicalRequest(r *http.Request, signedHeaders []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	b.WriteString(uriEncode(path, false) + "\n")
	b.WriteString(canonicalQuery(r.URL.RawQuery) + "\n")
	for _, h := range signedHeaders {
		var value string
		switch h {
		case "host":
			value = r.Host
		case "content-length":
			value = r.Header.Get("Content-Length")
			if value == "" {
				value = strconv.FormatInt(r.ContentLength, 10)
			}
		default:
			vals := r.Header.Values(h)
			for i, v := range vals {
				vals[i] = strings.Join(strings.Fields(v), " ")
			}
			value = strings.Join(vals, ",")
		}
		b.WriteString(h + ":" + value + "\n")
	}
	b.WriteString("\n" + strings.Join(signedHeaders, ";") + "\n")
	b.WriteString(payloadHash)
	return b.String()
}

// canonicalQuery sorts the query's parameters by name, then value, each
// URI-encoded; a parameter without a value is name=.
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var params []kv
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			dk, dv = k, v
		}
		params = append(params, kv{uriEncode(dk, true), uriEncode(dv, true)})
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i].k != params[j].k {
			return params[i].k < params[j].k
		}
		return params[i].v < params[j].v
	})
	out := make([]string, len(params))
	for i, p := range params {
		out[i] = p.k + "=" + p.v
	}
	return strings.Join(out, "&")
}

// uriEncode is SigV4's URI encoding: every byte but A-Z a-z 0-9 - . _ ~ as
// %XX (upper-case hex), and / kept unless encodeSlash.
func uriEncode(s string, encodeSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		case c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// verifyChunks checks each chunk of an aws-chunked body against the
// signature chain that starts at the request's own signature, and returns
// the number of bytes of data.
func verifyChunks(body []byte, seed string, key []byte, amzDate, scope string) (int, error) {
	prev, total := seed, 0
	for {
		line, rest, ok := bytes.Cut(body, []byte("\r\n"))
		if !ok {
			return 0, fmt.Errorf("chunk header without its CRLF")
		}
		size, sig, ok := strings.Cut(string(line), ";chunk-signature=")
		if !ok {
			return 0, fmt.Errorf("chunk header %q has no chunk-signature", line)
		}
		n, err := strconv.ParseInt(size, 16, 32)
		if err != nil || n < 0 || int(n)+2 > len(rest) {
			return 0, fmt.Errorf("bad chunk size %q", size)
		}
		data := rest[:n]
		if string(rest[n:n+2]) != "\r\n" {
			return 0, fmt.Errorf("chunk data not followed by CRLF")
		}
		toSign := strings.Join([]string{chunkAlgorithm, amzDate, scope, prev, emptySHA256, hexSHA256(data)}, "\n")
		want := hex.EncodeToString(hmacSHA256(key, []byte(toSign)))
		if !hmac.Equal([]byte(want), []byte(sig)) {
			return 0, fmt.Errorf("chunk %d's signature", total)
		}
		prev, total, body = sig, total+int(n), rest[n+2:]
		if n == 0 {
			if len(body) != 0 {
				return 0, fmt.Errorf("%d bytes after the last chunk", len(body))
			}
			return total, nil
		}
	}
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte("aws4_request"))
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
