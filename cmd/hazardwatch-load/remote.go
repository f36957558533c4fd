package main

import (
	"context"
	"errors"
	"io"
)

func runRemote(ctx context.Context, o options, stdout io.Writer) (*report, error) {
	return nil, errors.New("not yet")
}
