// Package party owns the parties of the airspace and their credentials:
// creating a party and its bearer token, rotating and revoking tokens, and
// turning a presented token into the one party (or the operator) a request
// acts as. Tokens are 256 random bits, shown once, and only ever stored as
// their SHA-256 hash.
package party

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/store"
)

// OperatorName is the party name of the service operator. It is reserved:
// no airspace party may take it, and "deconflict" is reserved for system
// items (alerts posted to the hotline).
const OperatorName = "operator"

// tokenBytes is the entropy of a token: 256 bits, well above the 128 the
// design requires, at no cost.
const tokenBytes = 32

// Errors callers test with errors.Is.
var (
	// ErrUnauthenticated covers a missing, malformed, unknown or revoked
	// token, and a disabled party: the caller is not told which.
	ErrUnauthenticated = errors.New("party: unauthenticated")
	ErrExists          = errors.New("party: already exists")
	ErrUnknown         = errors.New("party: no such party")
)

// Principal is who a request acts as.
type Principal struct {
	Party    string
	Operator bool
}

// ValidateName accepts 1 to 64 characters of lower-case letters, digits,
// '-' and '_', starting with a letter: names appear in URLs, audit records
// and SSE audiences, so they must never need escaping.
func ValidateName(name string) error {
	if name == "" || len(name) > 64 {
		return fielderr.New("name", "must be 1 to 64 characters")
	}
	if name[0] < 'a' || name[0] > 'z' {
		return fielderr.New("name", "must start with a lower-case letter")
	}
	for _, c := range name {
		ok := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'
		if !ok {
			return fielderr.Errorf("name", "character %q not allowed (use a-z, 0-9, '-', '_')", c)
		}
	}
	if name == "deconflict" || name == "*" {
		return fielderr.New("name", "is reserved")
	}
	return nil
}

// NewToken returns a fresh token and its hash.
func NewToken() (token string, hash []byte, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("party: reading random bytes: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken is the stored form of a token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// wellFormed reports whether s has the shape of a token NewToken makes, so
// that garbage is refused without a store lookup.
func wellFormed(token string) bool {
	if len(token) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil
}

// Add creates a party with one token inside tx and returns the token. The
// operator is the party named OperatorName with Operator set.
func Add(tx store.Parties, name string, operator bool, now time.Time) (string, error) {
	if operator {
		if name != OperatorName {
			return "", fielderr.New("name", "the operator party is named "+OperatorName)
		}
	} else if err := ValidateName(name); err != nil {
		return "", err
	} else if name == OperatorName {
		return "", fielderr.New("name", "is reserved for the operator")
	}
	err := tx.CreateParty(store.Party{Name: name, Operator: operator, Created: now.UTC()})
	if errors.Is(err, store.ErrConflict) {
		return "", fmt.Errorf("%w: %s", ErrExists, name)
	}
	if err != nil {
		return "", err
	}
	return issue(tx, name, now)
}

func issue(tx store.Parties, name string, now time.Time) (string, error) {
	token, hash, err := NewToken()
	if err != nil {
		return "", err
	}
	if err := tx.PutCredential(store.Credential{TokenHash: hash, Party: name, Created: now.UTC()}); err != nil {
		return "", err
	}
	return token, nil
}

// Rotate revokes every current token of the party and issues a new one.
func Rotate(tx store.Parties, name string, now time.Time) (string, error) {
	p, err := get(tx, name)
	if err != nil {
		return "", err
	}
	if err := revokeAll(tx, name, now); err != nil {
		return "", err
	}
	if p.Disabled {
		// Rotating is how a revoked party is given access again.
		p.Disabled = false
		if err := tx.UpdateParty(p); err != nil {
			return "", err
		}
	}
	return issue(tx, name, now)
}

// Revoke revokes every token of the party and disables it; its records
// stay. Callers holding an Authenticator must call its Forget afterwards.
func Revoke(tx store.Parties, name string, now time.Time) error {
	p, err := get(tx, name)
	if err != nil {
		return err
	}
	if err := revokeAll(tx, name, now); err != nil {
		return err
	}
	p.Disabled = true
	return tx.UpdateParty(p)
}

func get(tx store.Parties, name string) (store.Party, error) {
	p, err := tx.PartyByName(name)
	if errors.Is(err, store.ErrNotFound) {
		return p, fmt.Errorf("%w: %s", ErrUnknown, name)
	}
	return p, err
}

func revokeAll(tx store.Parties, name string, now time.Time) error {
	creds, err := tx.ListCredentials(name)
	if err != nil {
		return err
	}
	for _, c := range creds {
		if c.Revoked {
			continue
		}
		c.Revoked = true
		c.RevokedAt = now.UTC()
		if err := tx.PutCredential(c); err != nil {
			return err
		}
	}
	return nil
}

// Info is one line of List.
type Info struct {
	Name         string    `json:"name"`
	Operator     bool      `json:"operator"`
	Disabled     bool      `json:"disabled"`
	Created      time.Time `json:"created"`
	ActiveTokens int       `json:"active_tokens"`
}

// List returns every party with its count of usable tokens.
func List(tx store.Parties) ([]Info, error) {
	ps, err := tx.ListParties()
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(ps))
	for _, p := range ps {
		creds, err := tx.ListCredentials(p.Name)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, c := range creds {
			if !c.Revoked {
				n++
			}
		}
		out = append(out, Info{Name: p.Name, Operator: p.Operator, Disabled: p.Disabled, Created: p.Created, ActiveTokens: n})
	}
	return out, nil
}

// Authenticator resolves bearer tokens through a cache in front of the
// store, because every request of the hot ingest path authenticates.
// Entries live at most TTL so that a revocation made by another process
// (the `party revoke` command against the same data) takes effect within
// TTL; revocations made through this process call Forget and take effect
// at once.
type Authenticator struct {
	st  store.Store
	ttl time.Duration

	mu    sync.RWMutex
	cache map[[sha256.Size]byte]cached
	// forgets counts the Forget calls (mu held): a lookup that read the
	// store before one caches nothing, since what it read may be what the
	// Forget was for (a token revoked while it was being looked up).
	forgets uint64
}

type cached struct {
	p       Principal
	expires time.Time
}

// NewAuthenticator returns an Authenticator over st; ttl <= 0 means 5 s.
func NewAuthenticator(st store.Store, ttl time.Duration) *Authenticator {
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	return &Authenticator{st: st, ttl: ttl, cache: map[[sha256.Size]byte]cached{}}
}

// BearerToken extracts the token from an Authorization header value.
func BearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Authenticate returns the principal of token, or ErrUnauthenticated.
func (a *Authenticator) Authenticate(ctx context.Context, token string, now time.Time) (Principal, error) {
	if !wellFormed(token) {
		return Principal{}, ErrUnauthenticated
	}
	key := sha256.Sum256([]byte(token))
	a.mu.RLock()
	c, ok := a.cache[key]
	forgets := a.forgets
	a.mu.RUnlock()
	if ok && now.Before(c.expires) {
		return c.p, nil
	}
	var p Principal
	err := a.st.View(ctx, func(tx store.Tx) error {
		cred, err := tx.CredentialByHash(key[:])
		if err != nil {
			return err
		}
		if cred.Revoked {
			return ErrUnauthenticated
		}
		pt, err := tx.PartyByName(cred.Party)
		if err != nil {
			return err
		}
		if pt.Disabled {
			return ErrUnauthenticated
		}
		p = Principal{Party: pt.Name, Operator: pt.Operator}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrUnauthenticated) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.forgets != forgets {
		// A revoke or rotate may have committed after the store was read:
		// this answer stands for this request, which began before it (and
		// which the credentials change ends), but it is not cached.
		return p, nil
	}
	if len(a.cache) > 100_000 {
		// Bounded: a flood of distinct valid tokens cannot grow it forever.
		clear(a.cache)
	}
	a.cache[key] = cached{p: p, expires: now.Add(a.ttl)}
	return p, nil
}

// Forget drops every cached entry of the party (after a revoke or rotate).
func (a *Authenticator) Forget(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.forgets++
	for k, c := range a.cache {
		if c.p.Party == name {
			delete(a.cache, k)
		}
	}
}
