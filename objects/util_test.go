package objects

import (
	"strconv"

	"github.com/kinspect/kinspect/btfload"
)

func uhex(x uint64) string { return strconv.FormatUint(x, 16) }
func udec(x uint64) string { return strconv.FormatUint(x, 10) }

type btfloadDecls = btfload.Decls

func newDecls() *btfload.Decls { return btfload.NewDecls() }
