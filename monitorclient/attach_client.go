package monitorclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/berth-cri/berth/monitor"
)

func attach(ctx context.Context, socket string, stdin io.Reader, stdout, stderr io.Writer, resize <-chan Size) error {
	c, err := dialPacket(ctx, socket)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	defer c.Close()
	return attachOn(ctx, c, stdin, stdout, stderr, resize)
}

// attachOn speaks the attach protocol on a connected socket.
func attachOn(ctx context.Context, c *net.UnixConn, stdin io.Reader, stdout, stderr io.Writer, resize <-chan Size) error {
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	// Sizes already waiting are applied before any input, so a client can
	// size the terminal before its first keystroke.
	for pending := true; pending && resize != nil; {
		select {
		case sz, ok := <-resize:
			if !ok {
				resize = nil
				break
			}
			if _, err := c.Write(resizePacket(sz)); err != nil {
				return fmt.Errorf("attach: resize: %w", ctxOr(ctx, err))
			}
		default:
			pending = false
		}
	}

	// done ends the writers when the output ends first.
	done := make(chan struct{})
	defer close(done)
	// Packets from the stdin and resize goroutines go through one writer,
	// so a resize sent before some input is applied before it.
	out := make(chan []byte)
	go func() {
		for {
			select {
			case p := <-out:
				if _, err := c.Write(p); err != nil {
					return
				}
			case <-done:
				return
			}
		}
	}()
	send := func(p []byte) bool {
		select {
		case out <- p:
			return true
		case <-done:
			return false
		}
	}
	if resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-resize:
					if !ok {
						return
					}
					if !send(resizePacket(sz)) {
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	if stdin != nil {
		go func() {
			for {
				buf := make([]byte, 1+monitor.MaxPacket)
				buf[0] = monitor.AttachStdin
				n, err := stdin.Read(buf[1:])
				if n > 0 && !send(buf[:1+n]) {
					return
				}
				if err != nil {
					send([]byte{monitor.AttachStdinClose})
					return
				}
			}
		}()
	}

	buf := make([]byte, 1+monitor.MaxPacket)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			var w io.Writer
			switch buf[0] {
			case monitor.AttachStdout:
				w = stdout
			case monitor.AttachStderr:
				w = stderr
			}
			if w != nil && n > 1 {
				if _, werr := w.Write(buf[1:n]); werr != nil {
					return fmt.Errorf("attach: write output: %w", werr)
				}
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if errors.Is(err, syscall.ECONNRESET) {
				// The monitor hung up with input of ours still unread
				// (a stdin close or a resize sent as a short command
				// ended). The kernel reports that reset before the
				// packets still queued for us, and clears it once
				// reported: read on, so the container's last output
				// is delivered, until the zero read of the close.
				continue
			}
			return fmt.Errorf("attach: read: %w", err)
		}
		if n == 0 {
			return nil // seqpacket: a zero read is the peer's close
		}
	}
}

func resizePacket(sz Size) []byte {
	p := make([]byte, 5)
	p[0] = monitor.AttachResize
	binary.BigEndian.PutUint16(p[1:], sz.Width)
	binary.BigEndian.PutUint16(p[3:], sz.Height)
	return p
}
