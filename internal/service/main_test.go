package service

import (
	"os"
	"testing"

	"github.com/deconflict/deconflict/internal/store/pgtest"
)

// TestMain starts the throwaway PostgreSQL of the tests that ask for one.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
