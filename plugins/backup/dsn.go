package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// dbConn is how to reach a database server, split so that the password goes
// to the client tools through their environment (PGPASSWORD, MYSQL_PWD) and
// never onto a command line, where any process could read it.
type dbConn struct {
	kind     string
	url      *url.URL // postgres: the DSN without its password
	host     string
	port     string
	socket   string
	user     string
	password string
	// Database is the database the DSN names.
	Database string
}

// parseDSN reads a postgres:// URL, or a MySQL/MariaDB DSN in the Go
// driver's form (user:pass@tcp(host:port)/db) or as a mysql:// URL.
func parseDSN(kind, dsn string) (*dbConn, error) {
	switch kind {
	case kindPostgres:
		u, err := url.Parse(dsn)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, errors.New("not a postgres:// URL")
		}
		c := &dbConn{kind: kind, Database: strings.TrimPrefix(u.Path, "/")}
		if u.User != nil {
			c.user = u.User.Username()
			c.password, _ = u.User.Password()
			u.User = url.User(c.user)
		}
		if c.Database == "" {
			return nil, errors.New("it names no database")
		}
		c.url = u
		return c, nil
	case kindMySQL:
		c := &dbConn{kind: kind}
		if strings.HasPrefix(dsn, "mysql://") || strings.HasPrefix(dsn, "mariadb://") {
			u, err := url.Parse(dsn)
			if err != nil {
				return nil, errors.New("not a mysql:// URL")
			}
			c.host, c.port = u.Hostname(), u.Port()
			if u.User != nil {
				c.user = u.User.Username()
				c.password, _ = u.User.Password()
			}
			c.Database = strings.TrimPrefix(u.Path, "/")
		} else {
			at := strings.LastIndex(dsn, "@")
			if at < 0 {
				return nil, errors.New("not user:password@tcp(host:port)/database nor a mysql:// URL")
			}
			cred, rest := dsn[:at], dsn[at+1:]
			c.user, c.password, _ = strings.Cut(cred, ":")
			addr, db, ok := strings.Cut(rest, "/")
			if !ok {
				return nil, errors.New("no /database after the address")
			}
			db, _, _ = strings.Cut(db, "?")
			c.Database = db
			switch {
			case strings.HasPrefix(addr, "tcp(") && strings.HasSuffix(addr, ")"):
				h, p, err := net.SplitHostPort(addr[4 : len(addr)-1])
				if err != nil {
					return nil, fmt.Errorf("address: %v", err)
				}
				c.host, c.port = h, p
			case strings.HasPrefix(addr, "unix(") && strings.HasSuffix(addr, ")"):
				c.socket = addr[5 : len(addr)-1]
			case addr == "":
			default:
				return nil, errors.New("the address must be tcp(host:port) or unix(/path)")
			}
		}
		if c.Database == "" {
			return nil, errors.New("it names no database")
		}
		return c, nil
	}
	return nil, fmt.Errorf("no DSN for a %s target", kind)
}

// on returns the same server with another database.
func (c *dbConn) on(db string) *dbConn {
	cc := *c
	cc.Database = db
	if c.url != nil {
		u := *c.url
		u.Path = "/" + db
		cc.url = &u
	}
	return &cc
}

// env is what the client tools read the password from.
func (c *dbConn) env() []string {
	if c.password == "" {
		return nil
	}
	if c.kind == kindPostgres {
		return []string{"PGPASSWORD=" + c.password}
	}
	return []string{"MYSQL_PWD=" + c.password}
}

// pgDBName is psql's and pg_dump's --dbname: the DSN without its password.
func (c *dbConn) pgDBName() string { return "--dbname=" + c.url.String() }

// mysqlArgs are the connection flags of mariadb and mariadb-dump, without
// the database.
func (c *dbConn) mysqlArgs() []string {
	var a []string
	if c.socket != "" {
		a = append(a, "--socket="+c.socket)
	} else if c.host != "" {
		a = append(a, "--protocol=TCP", "--host="+c.host)
		if c.port != "" {
			a = append(a, "--port="+c.port)
		}
	}
	if c.user != "" {
		a = append(a, "--user="+c.user)
	}
	return a
}
