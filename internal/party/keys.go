package party

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/store"
)

// A party's public keys: the keys its writes are signed with (the private
// keys never reach the server). They are kept in the store's meta space
// under metaKeysPrefix + name, current and retired alike, so a retired key
// still names what it signed.

const metaKeysPrefix = "party-keys/"

// MaxKeys bounds the keys of one party, current and retired.
const MaxKeys = 32

// Key is one public key of a party.
type Key struct {
	ID        string     `json:"keyid"`
	PublicKey string     `json:"public_key"` // ed25519:<base64>
	Added     time.Time  `json:"added"`
	Retired   *time.Time `json:"retired,omitempty"`
}

// Current reports whether the key may sign now.
func (k Key) Current() bool { return k.Retired == nil }

// Public is the key's bytes.
func (k Key) Public() ed25519.PublicKey {
	pub, _ := partykey.ParseText(k.PublicKey)
	return pub
}

// ErrKeyExists and ErrKeyUnknown are the refusals of key changes.
var (
	ErrKeyExists  = errors.New("party: the key is already registered")
	ErrKeyUnknown = errors.New("party: no such key")
)

// Keys returns the keys of party name (none: nil).
func Keys(tx store.Meta, name string) ([]Key, error) {
	b, err := tx.GetMeta(metaKeysPrefix + name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ks []Key
	if err := json.Unmarshal(b, &ks); err != nil {
		return nil, fmt.Errorf("party: keys of %s: %w", name, err)
	}
	return ks, nil
}

// CurrentKeys returns the keys of party name that may sign, by key id.
func CurrentKeys(tx store.Meta, name string) (map[string]ed25519.PublicKey, error) {
	ks, err := Keys(tx, name)
	if err != nil {
		return nil, err
	}
	out := map[string]ed25519.PublicKey{}
	for _, k := range ks {
		if k.Current() {
			out[k.ID] = k.Public()
		}
	}
	return out, nil
}

// ParsePublicKeys reads public keys in their text form, naming the field
// of the first bad one (field[i]): one that does not parse, or a key
// given twice, which registering would refuse only once the party
// exists (ErrKeyExists); and at most MaxKeys of them.
func ParsePublicKeys(field string, texts []string) ([]ed25519.PublicKey, error) {
	if len(texts) > MaxKeys {
		return nil, fielderr.Errorf(field, "%d keys: a party has at most %d", len(texts), MaxKeys)
	}
	out := make([]ed25519.PublicKey, len(texts))
	for i, s := range texts {
		f := fmt.Sprintf("%s[%d]", field, i)
		pub, err := partykey.Parse(s)
		if err != nil {
			return nil, fielderr.New(f, err.Error())
		}
		for j, o := range out[:i] {
			if o.Equal(pub) {
				return nil, fielderr.Errorf(f, "the key of %s[%d] again", field, j)
			}
		}
		out[i] = pub
	}
	return out, nil
}

// AddKey registers pub as a current key of party name.
func AddKey(tx store.Meta, name string, pub ed25519.PublicKey, now time.Time) (Key, error) {
	ks, err := Keys(tx, name)
	if err != nil {
		return Key{}, err
	}
	id := partykey.ID(pub)
	for _, k := range ks {
		if k.ID == id {
			return Key{}, fmt.Errorf("%w: %s", ErrKeyExists, id)
		}
	}
	if len(ks) >= MaxKeys {
		return Key{}, fielderr.Errorf("public_key", "a party has at most %d keys, current and retired", MaxKeys)
	}
	k := Key{ID: id, PublicKey: partykey.Format(pub), Added: now.UTC()}
	return k, putKeys(tx, name, append(ks, k))
}

// RetireKey ends the use of key id of party name: it signs nothing more.
// The last current key cannot be retired (the party would lock itself out
// of signed writes): add its successor first.
func RetireKey(tx store.Meta, name, id string, now time.Time) (Key, error) {
	ks, err := Keys(tx, name)
	if err != nil {
		return Key{}, err
	}
	current, at := 0, -1
	for i, k := range ks {
		if k.Current() {
			current++
			if k.ID == id {
				at = i
			}
		}
	}
	if at < 0 {
		return Key{}, fmt.Errorf("%w: %s", ErrKeyUnknown, id)
	}
	if current == 1 {
		return Key{}, fielderr.New("keyid", "the last current key cannot be retired; add its successor first")
	}
	t := now.UTC()
	ks[at].Retired = &t
	return ks[at], putKeys(tx, name, ks)
}

func putKeys(tx store.Meta, name string, ks []Key) error {
	b, err := json.Marshal(ks)
	if err != nil {
		return err
	}
	return tx.PutMeta(metaKeysPrefix+name, b)
}
