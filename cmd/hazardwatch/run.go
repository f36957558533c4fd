package main

import (
	"fmt"
	"io"
)

func run(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "hazardwatch: the all-in-one mode is being assembled; use validate")
	return 2
}
