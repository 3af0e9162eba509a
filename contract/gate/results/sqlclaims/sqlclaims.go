// Package sqlclaims keeps result claims (results.Claims) in a
// MySQL-compatible database: the one Tessera's AWS driver sequences the log
// in, which every frontend of the log already reaches. One row per decision
// that got a result:
//
//	CREATE TABLE ztlog_result_claims (
//	  decision_index BIGINT UNSIGNED NOT NULL PRIMARY KEY,
//	  statement      VARCHAR(128) NOT NULL,  -- digest of the result statement
//	  owner          CHAR(32) NOT NULL,      -- the attempt holding the claim
//	  claimed_at_ms  BIGINT NOT NULL         -- Unix milliseconds
//	)
//
// The primary key is the arbiter: of two frontends inserting a claim for
// one decision, the database lets one insert and shows the other that row.
// A row is about 100 bytes, so a million results take about 100 MB; rows
// of decisions whose receipts have expired may be deleted (no broker can
// report on them any more).
package sqlclaims

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/zt-infra/ztlog/contract/gate/results"
)

// Table is the claims table's name.
const Table = "ztlog_result_claims"

// Claims is a results.Claims over a MySQL-compatible database.
type Claims struct{ db *sql.DB }

var _ results.Claims = (*Claims)(nil)

// Open connects to the database at dsn (go-sql-driver/mysql form,
// "user:pass@tcp(host:3306)/db") and creates the table if it is missing.
func Open(ctx context.Context, dsn string) (*Claims, error) {
	if dsn == "" {
		return nil, errors.New("result claims: no database DSN")
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, fmt.Errorf("result claims: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetConnMaxLifetime(time.Minute) // reconnect after a database restart
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+Table+` (
  decision_index BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  statement VARCHAR(128) NOT NULL,
  owner CHAR(32) NOT NULL,
  claimed_at_ms BIGINT NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("result claims: create table %s: %w", Table, err)
	}
	return &Claims{db: db}, nil
}

// Close closes the connections.
func (c *Claims) Close() error { return c.db.Close() }

// Claim inserts the claim unless the decision has one, and returns the one
// that stands.
func (c *Claims) Claim(ctx context.Context, decision uint64, statement, owner string, now time.Time) (results.Claim, error) {
	if _, err := c.db.ExecContext(ctx, `INSERT INTO `+Table+` (decision_index, statement, owner, claimed_at_ms) VALUES (?, ?, ?, ?)
ON DUPLICATE KEY UPDATE decision_index = decision_index`, decision, statement, owner, now.UnixMilli()); err != nil {
		return results.Claim{}, fmt.Errorf("claim decision %d: %w", decision, err)
	}
	var cl results.Claim
	var ms int64
	err := c.db.QueryRowContext(ctx, `SELECT statement, owner, claimed_at_ms FROM `+Table+` WHERE decision_index = ?`, decision).
		Scan(&cl.Statement, &cl.Owner, &ms)
	if err != nil {
		return results.Claim{}, fmt.Errorf("read the claim of decision %d: %w", decision, err)
	}
	cl.At = time.UnixMilli(ms)
	return cl, nil
}

// TakeOver moves the claim from prev to owner.
func (c *Claims) TakeOver(ctx context.Context, decision uint64, prev, owner string, now time.Time) (bool, error) {
	res, err := c.db.ExecContext(ctx, `UPDATE `+Table+` SET owner = ?, claimed_at_ms = ? WHERE decision_index = ? AND owner = ?`,
		owner, now.UnixMilli(), decision, prev)
	if err != nil {
		return false, fmt.Errorf("take over the claim of decision %d: %w", decision, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Release deletes owner's claim on decision.
func (c *Claims) Release(ctx context.Context, decision uint64, owner string) error {
	if _, err := c.db.ExecContext(ctx, `DELETE FROM `+Table+` WHERE decision_index = ? AND owner = ?`, decision, owner); err != nil {
		return fmt.Errorf("release the claim of decision %d: %w", decision, err)
	}
	return nil
}
