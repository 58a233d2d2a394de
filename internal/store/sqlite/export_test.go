package sqlite

import (
	"context"

	"github.com/deconflict/deconflict/internal/store"
)

// WriterPragma reads a pragma on the writer connection, from inside an
// Update, where the writer goroutine lends it to fn.
func WriterPragma(s *Store, name string) (string, error) {
	var v string
	err := s.Update(context.Background(), func(store.Tx) error {
		return s.wconn.QueryRowContext(context.Background(), "PRAGMA "+name).Scan(&v)
	})
	return v, err
}

// ReaderPragma reads a pragma on a reader connection.
func ReaderPragma(s *Store, name string) (string, error) {
	var v string
	err := s.rdb.QueryRowContext(context.Background(), "PRAGMA "+name).Scan(&v)
	return v, err
}
