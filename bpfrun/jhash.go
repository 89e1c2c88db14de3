package bpfrun

import (
	"encoding/binary"
	"math/bits"
)

// The kernel's Jenkins hash (include/linux/jhash.h), which the hash maps
// hash their keys with (kernel/bpf/hashtab.c htab_map_hash).

const jhashInitval = 0xdeadbeef

func jhashMix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

func jhashFinal(a, b, c uint32) uint32 {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

// jhash is the kernel's jhash(key, length, initval).
func jhash(k []byte, initval uint32) uint32 {
	n := uint32(len(k))
	a := jhashInitval + n + initval
	b, c := a, a
	for len(k) > 12 {
		a += binary.LittleEndian.Uint32(k)
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		a, b, c = jhashMix(a, b, c)
		k = k[12:]
	}
	if len(k) == 0 {
		return c
	}
	var t [12]byte
	copy(t[:], k)
	a += binary.LittleEndian.Uint32(t[0:])
	b += binary.LittleEndian.Uint32(t[4:])
	c += binary.LittleEndian.Uint32(t[8:])
	return jhashFinal(a, b, c)
}

// jhash2 is the kernel's jhash2(k, length, initval) over the 32-bit words
// of k.
func jhash2(k []byte, initval uint32) uint32 {
	n := uint32(len(k) / 4)
	a := jhashInitval + n<<2 + initval
	b, c := a, a
	for len(k) > 12 {
		a += binary.LittleEndian.Uint32(k)
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		a, b, c = jhashMix(a, b, c)
		k = k[12:]
	}
	switch len(k) {
	case 12:
		c += binary.LittleEndian.Uint32(k[8:])
		fallthrough
	case 8:
		b += binary.LittleEndian.Uint32(k[4:])
		fallthrough
	case 4:
		a += binary.LittleEndian.Uint32(k)
		return jhashFinal(a, b, c)
	}
	return c
}

// htabHash is htab_map_hash: jhash2 over a key of whole words, else
// jhash.
func htabHash(key []byte, hashrnd uint32) uint32 {
	if len(key)%4 == 0 {
		return jhash2(key, hashrnd)
	}
	return jhash(key, hashrnd)
}
