package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Error is a failed registry operation. Its message names the registry, the
// repository and what failed; it unwraps to an errdefs class and, when there
// is one, the underlying error.
type Error struct {
	Msg    string // what failed, naming registry and repository
	Status int    // HTTP status, 0 when there was no response
	Detail string // the server's or the transport's explanation
	class  error
	cause  error
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Msg
	}
	return e.Msg + ": " + e.Detail
}

// Unwrap returns the errdefs class and the cause.
func (e *Error) Unwrap() []error {
	errs := []error{e.class}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// statusClass maps an HTTP status to an errdefs class.
func statusClass(code int) error {
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return errdefs.ErrUnauthorized
	case code == http.StatusNotFound:
		return errdefs.ErrNotFound
	case code == http.StatusConflict:
		return errdefs.ErrConflict
	case code == http.StatusTooManyRequests || code >= 500:
		return errdefs.ErrUnavailable
	case code >= 400:
		return errdefs.ErrInvalidArgument
	default:
		return errdefs.ErrUnavailable
	}
}

// retryableStatus reports whether a request that got code may succeed later.
func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500
}

// responseError returns an Error for an unexpected response, reading (and
// closing) its body for the server's explanation. msg says what failed.
func responseError(resp *http.Response, msg string) *Error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	detail := resp.Status
	if s := serverMessage(body); s != "" {
		detail += ": " + s
	}
	return &Error{Msg: msg, Status: resp.StatusCode, Detail: detail, class: statusClass(resp.StatusCode)}
}

// serverMessage extracts the messages of a distribution error body
// ({"errors":[{"code":..., "message":...}]}), or a short plain body.
func serverMessage(body []byte) string {
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
		var parts []string
		for _, d := range e.Errors {
			switch {
			case d.Message != "" && d.Code != "":
				parts = append(parts, strings.ToLower(d.Code)+": "+d.Message)
			case d.Message != "":
				parts = append(parts, d.Message)
			default:
				parts = append(parts, strings.ToLower(d.Code))
			}
		}
		return strings.Join(parts, "; ")
	}
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// transportError classifies an error without an HTTP response: the context
// ending, a TLS failure, a timeout or a dropped connection. msg says what
// failed.
func transportError(ctx context.Context, err error, msg string) *Error {
	e := &Error{Msg: msg, Detail: err.Error(), class: errdefs.ErrUnavailable, cause: err}
	var te *transport.Error
	switch {
	case errors.As(err, &te):
		// A token exchange that the token server refused.
		e.Status = te.StatusCode
		e.class = statusClass(te.StatusCode)
	case ctx.Err() != nil:
		e.cause = errors.Join(err, ctx.Err())
	}
	return e
}

// isTLSError reports whether err is a certificate or handshake failure,
// which retrying will not fix.
func isTLSError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify) || errors.As(err, &record)
}

// retryableError reports whether a request that failed with err (and no
// response) may succeed if sent again.
func retryableError(ctx context.Context, err error) bool {
	if ctx.Err() != nil || isTLSError(err) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return retryableStatus(te.StatusCode)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset")
}

// dataLoss returns an ErrDataLoss Error.
func dataLoss(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), class: errdefs.ErrDataLoss}
}

// invalid returns an ErrInvalidArgument Error.
func invalid(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), class: errdefs.ErrInvalidArgument}
}
