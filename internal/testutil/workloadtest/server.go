// Package workloadtest serves the SPIFFE Workload API (go-spiffe's public
// proto/spiffe/workload gRPC interface) on a Unix socket from SVIDs you hand
// it, standing in for a SPIRE agent in tests. Updates (rotation) are streamed
// to every connected client, as SPIRE does.
package workloadtest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Server is a Workload API endpoint.
type Server struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	addr string
	grpc *grpc.Server

	mu      sync.Mutex
	svid    *x509svid.SVID
	x509    *x509bundle.Bundle
	jwt     *jwtbundle.Bundle
	changed chan struct{} // closed and replaced on every update
}

// Start serves on a new Unix socket in dir. Addr is what to pass to
// workloadapi.WithAddr (or SPIFFE_ENDPOINT_SOCKET).
func Start(dir string, svid *x509svid.SVID, x509 *x509bundle.Bundle, jwt *jwtbundle.Bundle) (*Server, error) {
	path := filepath.Join(dir, "agent.sock")
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	s := &Server{addr: "unix://" + path, grpc: grpc.NewServer(), svid: svid, x509: x509, jwt: jwt, changed: make(chan struct{})}
	workload.RegisterSpiffeWorkloadAPIServer(s.grpc, s)
	go s.grpc.Serve(ln)
	return s, nil
}

// Addr is the socket address ("unix:///.../agent.sock").
func (s *Server) Addr() string { return s.addr }

// Stop stops serving.
func (s *Server) Stop() { s.grpc.Stop() }

// SetSVID replaces the served X.509-SVID (rotation) and pushes it to every
// client.
func (s *Server) SetSVID(svid *x509svid.SVID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.svid = svid
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) snapshot() (*x509svid.SVID, *x509bundle.Bundle, *jwtbundle.Bundle, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.svid, s.x509, s.jwt, s.changed
}

// checkHeader enforces the Workload API's security header, as SPIRE does.
func checkHeader(ctx context.Context) error {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok || len(md.Get("workload.spiffe.io")) != 1 || md.Get("workload.spiffe.io")[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	return nil
}

// FetchX509SVID streams the SVID and its bundle, and again on every change.
func (s *Server) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	if err := checkHeader(stream.Context()); err != nil {
		return err
	}
	for {
		svid, x509, _, changed := s.snapshot()
		if svid == nil {
			return status.Error(codes.PermissionDenied, "no identity issued")
		}
		var chain []byte
		for _, c := range svid.Certificates {
			chain = append(chain, c.Raw...)
		}
		_, keyDER, err := svid.MarshalRaw()
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		var bundle []byte
		for _, c := range x509.X509Authorities() {
			bundle = append(bundle, c.Raw...)
		}
		if err := stream.Send(&workload.X509SVIDResponse{Svids: []*workload.X509SVID{{
			SpiffeId: svid.ID.String(), X509Svid: chain, X509SvidKey: keyDER, Bundle: bundle,
		}}}); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}

// FetchX509Bundles streams the X.509 bundle.
func (s *Server) FetchX509Bundles(_ *workload.X509BundlesRequest, stream grpc.ServerStreamingServer[workload.X509BundlesResponse]) error {
	if err := checkHeader(stream.Context()); err != nil {
		return err
	}
	for {
		_, x509, _, changed := s.snapshot()
		var bundle []byte
		for _, c := range x509.X509Authorities() {
			bundle = append(bundle, c.Raw...)
		}
		if err := stream.Send(&workload.X509BundlesResponse{Bundles: map[string][]byte{x509.TrustDomain().IDString(): bundle}}); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}

// FetchJWTBundles streams the JWT bundle as a JWKS.
func (s *Server) FetchJWTBundles(_ *workload.JWTBundlesRequest, stream grpc.ServerStreamingServer[workload.JWTBundlesResponse]) error {
	if err := checkHeader(stream.Context()); err != nil {
		return err
	}
	for {
		_, _, jwt, changed := s.snapshot()
		if jwt == nil {
			return status.Error(codes.Unavailable, "no JWT bundle")
		}
		jwks, err := jwt.Marshal()
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		if err := stream.Send(&workload.JWTBundlesResponse{Bundles: map[string][]byte{jwt.TrustDomain().IDString(): jwks}}); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}
