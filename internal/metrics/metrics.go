// Package metrics holds authapi's Prometheus instruments on a registry of their own (never the
// global default one), and serves them. cmd/authapi creates one Metrics and hands it down: the
// server records requests and outcomes on it; the hasher, the key ring and the store report
// through plain funcs, so that only this package imports Prometheus.
//
// A nil *Metrics records nothing, so callers need no checks when metrics are off.
package metrics

import (
	"database/sql"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// LoginOutcome is how a login ended.
type LoginOutcome string

// Login outcomes.
const (
	LoginOK        LoginOutcome = "ok"        // tokens issued
	LoginFailed    LoginOutcome = "failed"    // wrong password, unknown or inactive user
	LoginThrottled LoginOutcome = "throttled" // 429: too many failures
	LoginBusy      LoginOutcome = "busy"      // 503: no hashing slot in time
)

// RefreshOutcome is how a token refresh ended.
type RefreshOutcome string

// Refresh outcomes.
const (
	RefreshRotated       RefreshOutcome = "rotated"        // a new pair for a live refresh token
	RefreshGrace         RefreshOutcome = "grace"          // a retired token within the grace window: the same pair again
	RefreshReuseDetected RefreshOutcome = "reuse_detected" // a retired token after it: the session is revoked
	RefreshAccessOnly    RefreshOutcome = "access_only"    // rotation off: a new access token only
	RefreshInvalid       RefreshOutcome = "invalid"        // refused: bad, expired or revoked token
	RefreshThrottled     RefreshOutcome = "throttled"      // 429: too many refreshes from the client's IP
)

// RevokeCause is why sessions were revoked.
type RevokeCause string

// Revocation causes.
const (
	RevokeLogout         RevokeCause = "logout"               // POST auth/logout/: one session
	RevokeLogoutAll      RevokeCause = "logout_all"           // auth/logout_all/: every session of the caller
	RevokeSession        RevokeCause = "session_revoke"       // DELETE auth/sessions/{id}/
	RevokeUserSession    RevokeCause = "admin_session_revoke" // a superuser revoked one session of a user
	RevokeUserEverywhere RevokeCause = "admin_logout_all"     // a superuser logged a user out everywhere
	RevokeReuse          RevokeCause = "reuse"                // a refresh token came back after its grace window
	RevokePasswordChange RevokeCause = "password_change"      // the user's password changed: all their sessions (the changing one is replaced)
	RevokeDeactivation   RevokeCause = "deactivation"         // a superuser deactivated the user
	RevokeDeletion       RevokeCause = "deletion"             // the user was deleted with their sessions
)

// VerifyOutcome is what checking a bearer access token found.
type VerifyOutcome string

// Token verification outcomes.
const (
	VerifyCacheHit VerifyOutcome = "cache_hit" // verified before: taken from the auth cache
	VerifyOK       VerifyOutcome = "verified"  // signature checked and session loaded: accepted
	VerifyInvalid  VerifyOutcome = "invalid"   // bad signature, unknown key, expired, wrong type
	VerifyRejected VerifyOutcome = "rejected"  // valid token, but its session or user no longer is
)

// Unmatched is the route label of requests that matched no route, so that scanning for paths
// cannot grow the number of series.
const Unmatched = "unmatched"

// Metrics is safe for concurrent use; the zero value is not usable, call New.
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	mu       sync.RWMutex
	byLabels map[requestKey]requestSeries // so that a request hashes no label values

	logins    map[LoginOutcome]prometheus.Counter
	refreshes map[RefreshOutcome]prometheus.Counter
	revoked   map[RevokeCause]prometheus.Counter
	verified  map[VerifyOutcome]prometheus.Counter
	hashWait  prometheus.Histogram
	dbDown    prometheus.Counter
	ssf       map[SSFOutcome]prometheus.Counter
	mail      map[MailOutcome]prometheus.Counter
}

type requestKey struct {
	method, route string
	status        int
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// New registers every instrument, and Go runtime, process and build collectors, on a new
// registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg:      reg,
		byLabels: map[requestKey]requestSeries{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authapi_http_requests_total",
			Help: "HTTP requests answered, by method, route template and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authapi_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method, route template and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
		hashWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "authapi_password_hash_queue_wait_seconds",
			Help: "Time a password hash or check waited for a hashing slot (the ones that gave up waited the whole --hash-queue-wait).",
			// Most take a slot at once; the default wait is 1s.
			Buckets: []float64{.0001, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		dbDown: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authapi_database_unavailable_requests_total",
			Help: "Requests answered 503 unavailable because the database could not be reached.",
		}),
	}
	m.logins = counters(reg, "authapi_logins_total", "Logins, by outcome.", "outcome",
		LoginOK, LoginFailed, LoginThrottled, LoginBusy)
	m.refreshes = counters(reg, "authapi_token_refreshes_total", "Token refreshes, by outcome.", "outcome",
		RefreshRotated, RefreshGrace, RefreshReuseDetected, RefreshAccessOnly, RefreshInvalid, RefreshThrottled)
	m.revoked = counters(reg, "authapi_session_revocations_total",
		"Revocations, by cause: one per logout, session revoke or reuse (one session each), and one per logout-all, password change, deactivation or deletion (the user's sessions).", "cause",
		RevokeLogout, RevokeLogoutAll, RevokeSession, RevokeUserSession, RevokeUserEverywhere, RevokeReuse,
		RevokePasswordChange, RevokeDeactivation, RevokeDeletion)
	m.verified = counters(reg, "authapi_tokens_verified_total", "Bearer access tokens checked, by outcome.", "outcome",
		VerifyCacheHit, VerifyOK, VerifyInvalid, VerifyRejected)
	m.ssf = counters(reg, "authapi_ssf_events_total",
		"Shared Signals events by what became of them: delivered (pushed and accepted, or acknowledged by a poller), push attempts that failed (retried), rejected by the receiver, dropped from a full queue.", "outcome",
		SSFDelivered, SSFAcked, SSFPushFailed, SSFRejected, SSFDropped)
	m.mail = counters(reg, "authapi_mail_deliveries_total",
		"Attempts to deliver a message of the mail outbox, by outcome: sent, failed and retried later, failed for good (given up).", "outcome",
		MailSent, MailRetry, MailFailed)
	reg.MustRegister(m.requests, m.duration, m.hashWait, m.dbDown,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())
	return m
}

// counters registers a counter with one label and creates its series for every value, so
// that each is exported (at 0) before it first happens.
func counters[K ~string](reg *prometheus.Registry, name, help, label string, values ...K) map[K]prometheus.Counter {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	reg.MustRegister(vec)
	out := make(map[K]prometheus.Counter, len(values))
	for _, v := range values {
		out[v] = vec.WithLabelValues(string(v))
	}
	return out
}

// Handler serves the registry in the Prometheus text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Registry is the registry the instruments are on, for tests and further collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Request records an answered request. route is the matched route template, never the raw
// path; "" (no route matched) becomes Unmatched. A method outside the standard ones is counted
// as "other".
func (m *Metrics) Request(method, route string, status int, took time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = Unmatched
	}
	k := requestKey{method: knownMethod(method), route: route, status: status}
	m.mu.RLock()
	series, ok := m.byLabels[k]
	m.mu.RUnlock()
	if !ok {
		code := strconv.Itoa(status)
		series = requestSeries{
			count:    m.requests.WithLabelValues(k.method, route, code),
			duration: m.duration.WithLabelValues(k.method, route, code),
		}
		m.mu.Lock()
		m.byLabels[k] = series
		m.mu.Unlock()
	}
	series.count.Inc()
	series.duration.Observe(took.Seconds())
}

func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// Login counts a login by outcome.
func (m *Metrics) Login(o LoginOutcome) {
	if m != nil {
		m.logins[o].Inc()
	}
}

// Refresh counts a token refresh by outcome.
func (m *Metrics) Refresh(o RefreshOutcome) {
	if m != nil {
		m.refreshes[o].Inc()
	}
}

// Revoked counts a revocation by cause.
func (m *Metrics) Revoked(c RevokeCause) {
	if m != nil {
		m.revoked[c].Inc()
	}
}

// Verified counts a bearer token check by outcome.
func (m *Metrics) Verified(o VerifyOutcome) {
	if m != nil {
		m.verified[o].Inc()
	}
}

// DatabaseUnavailable counts a request refused because the database could not be reached.
func (m *Metrics) DatabaseUnavailable() {
	if m != nil {
		m.dbDown.Inc()
	}
}

// HashWait records how long a password hash or check waited for a slot (see
// password.Limit.ObserveWait).
func (m *Metrics) HashWait(d time.Duration) {
	if m != nil {
		m.hashWait.Observe(d.Seconds())
	}
}

// KeyRingState is what the signing key ring holds at a scrape.
type KeyRingState struct {
	Loaded int // keys in use: signing, pending and still verifying
	// NextSignsIn is how long until a pending key starts signing; Pending is false when no
	// key is pending (the gauge is then +Inf).
	NextSignsIn time.Duration
	Pending     bool
	LastReload  time.Time // the last successful load from the database
}

// WatchKeyRing exports the key ring's state, read by state at every scrape.
func (m *Metrics) WatchKeyRing(state func() KeyRingState) {
	if m == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "authapi_signing_keys_loaded",
			Help: "Signing keys in use by this process: signing, pending and still verifying.",
		}, func() float64 { return float64(state().Loaded) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "authapi_signing_key_next_signs_in_seconds",
			Help: "Seconds until the next (pending) signing key starts signing; +Inf when none is pending.",
		}, func() float64 {
			s := state()
			if !s.Pending {
				return math.Inf(1)
			}
			return max(s.NextSignsIn.Seconds(), 0)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "authapi_signing_keys_last_reload_timestamp_seconds",
			Help: "When this process last loaded the signing keys from the database (Unix time).",
		}, func() float64 { return float64(state().LastReload.UnixNano()) / 1e9 }),
	)
}

// WatchDBPools exports the connection pool statistics that stats returns at every scrape, by
// pool name, under the names Prometheus's own sql.DBStats collector uses.
func (m *Metrics) WatchDBPools(stats func() map[string]sql.DBStats) {
	if m != nil {
		m.reg.MustRegister(dbPools{stats: stats})
	}
}

type dbPools struct{ stats func() map[string]sql.DBStats }

var dbPoolDescs = struct {
	maxOpen, open, inUse, idle, waitCount, waitDuration, idleClosed, idleTimeClosed, lifetimeClosed *prometheus.Desc
}{
	maxOpen:        poolDesc("max_open_connections", "Maximum number of open connections to the database."),
	open:           poolDesc("open_connections", "Established connections, in use and idle."),
	inUse:          poolDesc("in_use_connections", "Connections in use."),
	idle:           poolDesc("idle_connections", "Idle connections."),
	waitCount:      poolDesc("wait_count_total", "Times a query waited for a connection."),
	waitDuration:   poolDesc("wait_duration_seconds_total", "Total time queries waited for a connection."),
	idleClosed:     poolDesc("max_idle_closed_total", "Connections closed because of the idle connections limit."),
	idleTimeClosed: poolDesc("max_idle_time_closed_total", "Connections closed because they were idle too long."),
	lifetimeClosed: poolDesc("max_lifetime_closed_total", "Connections closed because they reached their maximum lifetime."),
}

func poolDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("go_sql_"+name, help, []string{"db_name"}, nil)
}

func (p dbPools) Describe(ch chan<- *prometheus.Desc) {
	d := dbPoolDescs
	for _, desc := range []*prometheus.Desc{d.maxOpen, d.open, d.inUse, d.idle, d.waitCount, d.waitDuration, d.idleClosed, d.idleTimeClosed, d.lifetimeClosed} {
		ch <- desc
	}
}

func (p dbPools) Collect(ch chan<- prometheus.Metric) {
	d := dbPoolDescs
	for name, s := range p.stats() {
		gauge := func(desc *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, name)
		}
		counter := func(desc *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, name)
		}
		gauge(d.maxOpen, float64(s.MaxOpenConnections))
		gauge(d.open, float64(s.OpenConnections))
		gauge(d.inUse, float64(s.InUse))
		gauge(d.idle, float64(s.Idle))
		counter(d.waitCount, float64(s.WaitCount))
		counter(d.waitDuration, s.WaitDuration.Seconds())
		counter(d.idleClosed, float64(s.MaxIdleClosed))
		counter(d.idleTimeClosed, float64(s.MaxIdleTimeClosed))
		counter(d.lifetimeClosed, float64(s.MaxLifetimeClosed))
	}
}
