package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/docker/distribution/registry/api/errcode"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"

	"github.com/berth-cri/berth/errdefs"
)

// classifyPullError marks a containers/image pull error with the kind a
// CRI caller can act on, and words it so a person can too.
func classifyPullError(n reference.Named, err error) error {
	reg := registryOf(n)
	var unauth docker.ErrUnauthorizedForCredentials
	var policy signature.PolicyRequirementError
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return nil
	case errdefs.KindOf(err) != errdefs.KindUnknown && !isContextError(err):
		return err // already marked (blocked registry, ...)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("pull %s: canceled: %w", n, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("pull %s: deadline exceeded: %w", n, err)
	case errors.As(err, &unauth) || isUnauthorized(err):
		return errdefs.Unauthenticated(fmt.Errorf("pull %s: bad credentials for %s (the registry refused them, or needs some): %w", n, reg, err))
	case errors.As(err, &policy):
		return errdefs.PermissionDenied(fmt.Errorf("pull %s: refused by the signature policy: %w", n, err))
	case isNotFound(err):
		return errdefs.NotFound(fmt.Errorf("pull %s: image not found in registry %s: %w", n, reg, err))
	case errors.As(err, &dnsErr):
		return errdefs.Unavailable(fmt.Errorf("pull %s: registry %s cannot be resolved: %w", n, reg, err))
	case isConnectionError(err):
		return errdefs.Unavailable(fmt.Errorf("pull %s: registry %s is unreachable: %w", n, reg, err))
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return errdefs.Unavailable(fmt.Errorf("pull %s: registry %s speaks plain HTTP; mark it insecure in registries.conf: %w", n, reg, err))
	case isServerError(err):
		return errdefs.Unavailable(fmt.Errorf("pull %s: registry %s failed: %w", n, reg, err))
	}
	return fmt.Errorf("pull %s: %w", n, err)
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// isUnauthorized: the registry refused the request for want of (good)
// credentials: errcode UNAUTHORIZED or DENIED, or a bare 401/403.
func isUnauthorized(err error) bool {
	var ec errcode.ErrorCoder
	if errors.As(err, &ec) {
		switch ec.ErrorCode().String() {
		case "UNAUTHORIZED", "DENIED":
			return true
		}
	}
	var st docker.UnexpectedHTTPStatusError
	return errors.As(err, &st) && (st.StatusCode == http.StatusUnauthorized || st.StatusCode == http.StatusForbidden)
}

// isNotFound: the registry says it has no such repository or manifest
// (errcode MANIFEST_UNKNOWN or NAME_UNKNOWN, or a bare 404).
func isNotFound(err error) bool {
	var ec errcode.ErrorCoder
	if errors.As(err, &ec) {
		switch ec.ErrorCode().String() {
		case "MANIFEST_UNKNOWN", "NAME_UNKNOWN":
			return true
		}
	}
	var st docker.UnexpectedHTTPStatusError
	if errors.As(err, &st) && st.StatusCode == http.StatusNotFound {
		return true
	}
	// An unparsable 404 body only shows in the text.
	return strings.Contains(err.Error(), "StatusCode: 404")
}

// isConnectionError: nothing answered, or the connection broke.
func isConnectionError(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op)
}

// isServerError: the registry answered 5xx or 429.
func isServerError(err error) bool {
	if errors.Is(err, docker.ErrTooManyRequests) {
		return true
	}
	var st docker.UnexpectedHTTPStatusError
	if errors.As(err, &st) && st.StatusCode >= 500 {
		return true
	}
	var ec errcode.Error
	if errors.As(err, &ec) && ec.ErrorCode().Descriptor().HTTPStatusCode >= 500 {
		return true
	}
	return false
}

// isTransient says whether retrying the same pull may succeed.
func isTransient(err error) bool {
	if isContextError(err) {
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTemporary || dnsErr.IsTimeout
	}
	return isConnectionError(err) || isServerError(err)
}
