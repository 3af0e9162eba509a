package gcptest

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"

	"cloud.google.com/go/spanner/admin/database/apiv1/databasepb"
	"cloud.google.com/go/spanner/spansql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

const updateDDL = "/google.spanner.admin.database.v1.DatabaseAdmin/UpdateDatabaseDdl"

// spannerFront is a gRPC pass-through in front of spannertest that supplies
// the one thing Tessera needs and spannertest lacks: `CREATE TABLE IF NOT
// EXISTS` of a table that exists. Real Spanner skips such a statement;
// spannertest (cloud.google.com/go/spanner v1.91.0 and later) fails the
// whole DDL operation with AlreadyExists. Tessera's GCP driver issues its
// CREATE TABLE IF NOT EXISTS statements on every start, so without this a
// second start on the same database - a restart - fails against bare
// spannertest. The front asks spannertest for its DDL and drops exactly the
// CREATE TABLE IF NOT EXISTS statements naming existing tables; every other
// call and statement passes through unchanged.
type spannerFront struct {
	backend *grpc.ClientConn
	admin   databasepb.DatabaseAdminClient
}

// startSpannerFront serves a front for the spannertest at backendAddr and
// returns its address.
func startSpannerFront(t testing.TB, backendAddr string) string {
	t.Helper()
	conn, err := grpc.NewClient(backendAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("spanner front: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	f := &spannerFront{backend: conn, admin: databasepb.NewDatabaseAdminClient(conn)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(f.forward))
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// forward relays one call, of any shape, to spannertest.
func (f *spannerFront) forward(_ any, in grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(in)
	if !ok {
		return fmt.Errorf("spanner front: no method")
	}
	ctx, cancel := context.WithCancel(in.Context())
	defer cancel()
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		ctx = metadata.NewOutgoingContext(ctx, md.Copy())
	}
	out, err := f.backend.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, method, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	// The caller's messages go up in their own goroutine; a send that fails
	// shows on the receive side. A failed rewrite ends the call with its
	// own error.
	rewriteErr := make(chan error, 1)
	go func() {
		for {
			var m []byte
			if err := in.RecvMsg(&m); err != nil {
				if err == io.EOF {
					out.CloseSend()
				} else {
					cancel()
				}
				return
			}
			if method == updateDDL {
				var err error
				if m, err = f.skipExistingTables(ctx, m); err != nil {
					rewriteErr <- err
					cancel()
					return
				}
			}
			if err := out.SendMsg(&m); err != nil {
				return
			}
		}
	}()
	if hdr, err := out.Header(); err == nil {
		in.SendHeader(hdr)
	}
	for {
		var m []byte
		if err := out.RecvMsg(&m); err != nil {
			in.SetTrailer(out.Trailer())
			if err == io.EOF {
				return nil
			}
			select {
			case rerr := <-rewriteErr:
				return rerr
			default:
				return err
			}
		}
		if err := in.SendMsg(&m); err != nil {
			return err
		}
	}
}

// skipExistingTables rewrites an UpdateDatabaseDdlRequest without the
// CREATE TABLE IF NOT EXISTS statements for tables spannertest already has.
func (f *spannerFront) skipExistingTables(ctx context.Context, raw []byte) ([]byte, error) {
	var req databasepb.UpdateDatabaseDdlRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("spanner front: UpdateDatabaseDdlRequest: %w", err)
	}
	ddl, err := f.admin.GetDatabaseDdl(ctx, &databasepb.GetDatabaseDdlRequest{Database: req.Database})
	if err != nil {
		return nil, fmt.Errorf("spanner front: GetDatabaseDdl: %w", err)
	}
	exists := map[spansql.ID]bool{}
	for _, s := range ddl.Statements {
		if st, err := spansql.ParseDDLStmt(s); err == nil {
			if ct, ok := st.(*spansql.CreateTable); ok {
				exists[ct.Name] = true
			}
		}
	}
	var keep []string
	for _, s := range req.Statements {
		if st, err := spansql.ParseDDLStmt(s); err == nil {
			if ct, ok := st.(*spansql.CreateTable); ok && ct.IfNotExists && exists[ct.Name] {
				continue
			}
		}
		keep = append(keep, s)
	}
	req.Statements = keep
	return proto.Marshal(&req)
}

// rawCodec passes messages through as bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }
