package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chimaops/chima/plugins/deploy/internal/validate"
	"github.com/chimaops/chima/sdk"
)

// Deployment states. A deployment is queued until its job starts; the end
// states mirror GitHub's deployment statuses.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSuccess   = "success"
	StateFailure   = "failure"
	StateError     = "error"
	StateCancelled = "cancelled"
)

// Deployment is one deployment, kept in the plugin's key-value state. ID is
// Chima's own number for it, the one people type (deploy:status 12);
// GitHubID is set in GitHub mode.
type Deployment struct {
	ID       int64  `json:"id"`
	GitHubID int64  `json:"github_id,omitempty"`
	App      string `json:"app"`
	Env      string `json:"env"`
	Ref      string `json:"ref"`
	SHA      string `json:"sha,omitempty"`
	Task     string `json:"task"`
	Hosts    string `json:"hosts,omitempty"`
	Force    bool   `json:"force,omitempty"`
	User     string `json:"user"`
	UserName string `json:"user_name,omitempty"`
	// Owner is who the deployment's locks are checked against: the
	// person of chima.yaml's people who asked (the same on every chat),
	// empty for an account in none (then User is).
	Owner      string `json:"owner,omitempty"`
	State      string `json:"state"`
	Detail     string `json:"detail,omitempty"`
	JobID      int64  `json:"job_id,omitempty"`
	RollbackOf int64  `json:"rollback_of,omitempty"`
	// TriggeredBy is the plugin that ran the deploy command for someone
	// (cistatus's auto-deploy), or "chima" for a schedule; "" when a person
	// typed it.
	TriggeredBy string `json:"triggered_by,omitempty"`
	// Approval is the approval request that approved the deployment (to a
	// protected environment), 0 for none; ApprovedBy who approved it.
	Approval   int64    `json:"approval,omitempty"`
	ApprovedBy []string `json:"approved_by,omitempty"`
	// Notify is where the deployment reports: the command's room and thread.
	Notify     Target    `json:"notify"`
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// AliveAt is the last time the plugin saw the deployment running
	// (every aliveEvery): the end of one whose plugin or bot died, which
	// the next plugin can only know from it.
	AliveAt time.Time `json:"alive_at,omitzero"`
}

// Target is a room (and thread) to report to.
type Target struct {
	Adapter string `json:"adapter"`
	Room    string `json:"room"`
	Thread  string `json:"thread,omitempty"`
}

// Ended reports whether the deployment reached an end state.
func (d *Deployment) Ended() bool {
	switch d.State {
	case StateSuccess, StateFailure, StateError, StateCancelled:
		return true
	}
	return false
}

// Duration is how long the deployment ran, or has been running.
func (d *Deployment) Duration(now time.Time) time.Duration {
	if d.StartedAt.IsZero() {
		return 0
	}
	end := d.FinishedAt
	if end.IsZero() {
		end = now
	}
	return end.Sub(d.StartedAt).Round(100 * time.Millisecond)
}

// What is "ref@short-sha" for messages, or the short SHA alone when the
// ref is that commit (a rollback's).
func (d *Deployment) What() string {
	if d.SHA == "" || d.refIsSHA() {
		return d.RefName()
	}
	return d.Ref + "@" + short(d.SHA)
}

// RefName is the ref for messages: a full SHA (a rollback deploys one) is
// shortened.
func (d *Deployment) RefName() string {
	if validate.IsFullSHA(d.Ref) {
		return short(d.Ref)
	}
	return d.Ref
}

func (d *Deployment) refIsSHA() bool {
	return validate.IsFullSHA(d.Ref) && strings.EqualFold(d.Ref, d.SHA)
}

// Summary is "app/ref (short-sha) to env" for the end of a deployment; the
// SHA is left out while unknown, and when the ref is that commit.
func (d *Deployment) Summary() string {
	what := d.App + "/" + d.RefName()
	if d.SHA != "" && !d.refIsSHA() {
		what += " (" + short(d.SHA) + ")"
	}
	return what + " to " + d.Env
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// records keeps deployments in the plugin's KV state:
//
//	seq                     last id given out
//	dep/<id>                the record (JSON)
//	env/<app>/<env>/<id>    index by environment, newest last
//	gh/<github id>          GitHub deployment id → id
//	page-secret             the key of log page tokens (hex)
//
// Ids are zero-padded so that key order is id order. The counter is the
// host's atomic increment, safe across replicas; the mutex guards the page
// secret this process caches.
type records struct {
	mu sync.Mutex
	// secret is page-secret once loaded or made; guarded by mu.
	secret []byte
}

const pageSecretKey = "page-secret"

// pageSecret returns this installation's key for log page tokens: 32 random
// bytes, made on first use (when create is set) and kept in KV, so links
// stay valid across restarts. It is nil, with no error, when there is none
// yet and create is not set.
func (r *records) pageSecret(c *sdk.Context, create bool) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.secret != nil {
		return r.secret, nil
	}
	raw, ok, err := c.KV().Get(pageSecretKey)
	if err != nil {
		return nil, err
	}
	if ok {
		secret, err := hex.DecodeString(string(raw))
		if err != nil || len(secret) < 32 {
			return nil, fmt.Errorf("the stored %s is not 32 hex-encoded bytes", pageSecretKey)
		}
		r.secret = secret
		return secret, nil
	}
	if !create {
		return nil, nil
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	// Create, not Set: a replica that made its secret at the same time
	// must not overwrite this one's, or its links would stop working.
	_, cur, err := c.KV().Create(pageSecretKey, []byte(hex.EncodeToString(secret)))
	if err != nil {
		return nil, err
	}
	if secret, err = hex.DecodeString(string(cur)); err != nil || len(secret) < 32 {
		return nil, fmt.Errorf("the stored %s is not 32 hex-encoded bytes", pageSecretKey)
	}
	r.secret = secret
	return secret, nil
}

// logToken is what opens deployment id's log page: HMAC-SHA256 of the id
// under the page secret. Ids are sequential; the token is not guessable.
func logToken(secret []byte, id int64) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(id, 10)))
	return mac.Sum(nil)
}

// ErrNoDeployment is returned for an unknown deployment id.
var ErrNoDeployment = errors.New("no such deployment")

func depKey(id int64) string { return fmt.Sprintf("dep/%012d", id) }

func envKey(app, env string, id int64) string {
	return fmt.Sprintf("env/%s/%s/%012d", app, env, id)
}

// create gives d a new id and stores it.
func (r *records) create(c *sdk.Context, d *Deployment) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// An atomic increment in the host's store: replicas of the bot each
	// run a deploy plugin, and no two may hand out one id.
	id, err := c.KV().Increment("seq", 1)
	if err != nil {
		return err
	}
	d.ID = id
	if err := r.putLocked(c, d); err != nil {
		return err
	}
	if err := c.KV().Set(envKey(d.App, d.Env, d.ID), nil); err != nil {
		return err
	}
	if d.GitHubID != 0 {
		return c.KV().Set("gh/"+strconv.FormatInt(d.GitHubID, 10), []byte(strconv.FormatInt(d.ID, 10)))
	}
	return nil
}

func (r *records) putLocked(c *sdk.Context, d *Deployment) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return c.KV().Set(depKey(d.ID), b)
}

// get loads deployment id.
func (r *records) get(c *sdk.Context, id int64) (*Deployment, error) {
	raw, ok, err := c.KV().Get(depKey(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: #%d", ErrNoDeployment, id)
	}
	d := &Deployment{}
	if err := json.Unmarshal(raw, d); err != nil {
		return nil, fmt.Errorf("decode deployment #%d: %w", id, err)
	}
	return d, nil
}

// byGitHubID finds the deployment created for a GitHub deployment.
func (r *records) byGitHubID(c *sdk.Context, ghID int64) (*Deployment, error) {
	raw, ok, err := c.KV().Get("gh/" + strconv.FormatInt(ghID, 10))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: GitHub deployment %d", ErrNoDeployment, ghID)
	}
	id, _ := strconv.ParseInt(string(raw), 10, 64)
	return r.get(c, id)
}

// linkGitHub indexes d by its GitHub deployment id.
func (r *records) linkGitHub(c *sdk.Context, d *Deployment) error {
	return c.KV().Set("gh/"+strconv.FormatInt(d.GitHubID, 10), []byte(strconv.FormatInt(d.ID, 10)))
}

// update loads id, applies f and stores the result.
func (r *records) update(c *sdk.Context, id int64, f func(*Deployment)) (*Deployment, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.get(c, id)
	if err != nil {
		return nil, err
	}
	f(d)
	return d, r.putLocked(c, d)
}

// list returns the deployments of app (in env, when given), newest first,
// at most limit.
func (r *records) list(c *sdk.Context, app, env string, limit int) ([]*Deployment, error) {
	prefix := "env/" + app + "/"
	if env != "" {
		prefix += env + "/"
	}
	keys, err := c.KV().List(prefix)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(keys))
	for _, k := range keys {
		id, err := strconv.ParseInt(k[strings.LastIndexByte(k, '/')+1:], 10, 64)
		if err == nil {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	var out []*Deployment
	for _, id := range ids {
		if limit > 0 && len(out) >= limit {
			break
		}
		d, err := r.get(c, id)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// lockOwner is the owner of the locks the deployment may pass: its
// person's, else its user's.
func (d *Deployment) lockOwner() string {
	if d.TriggeredBy != "" {
		return "" // see commandLockOwner
	}
	return firstNonEmpty(d.Owner, d.User)
}

// Person is who asked for the deployment as chat shows them: their name
// where the chat service gave one (Slack and Mattermost report ids such as
// U024BE7LH), else their id.
func (d *Deployment) Person() string {
	if d.UserName != "" {
		return d.UserName
	}
	return d.User
}
