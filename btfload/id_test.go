package btfload

import "github.com/cilium/ebpf/btf"

func uint32ID(i int) btf.TypeID { return btf.TypeID(i) }
