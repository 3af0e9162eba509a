// Package archtest holds no code: its tests enforce the boundary rules of
// ARCHITECTURE.md over the whole module (which package may import which,
// what each binary links, how long a command's function may grow, and that
// no run of code is repeated between two files).
package archtest
