package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// RaiseSession records a re-authentication (step-up) of userID in their live session
// sessionID at at: in one transaction it uses proof when given (a TOTP step or a recovery
// code, once: useProof), sets the session's amr and auth_time, writes events (with the user as
// TargetID and the session as SessionID), and logs the change, so that no instance keeps
// serving what it cached of the session. The session stays the same: its refresh tokens
// carry the new amr and auth_time from their next refresh on. It returns ErrFactorRejected
// (the proof was used meanwhile; nothing changed) and ErrSessionNotFound (the session is not
// userID's, or not live at at).
func (s *Store) RaiseSession(ctx context.Context, userID int64, sessionID string, amr []string, at time.Time, proof *MFAProof, events ...AuditEvent) error {
	at = utc(at)
	err := s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		if proof != nil {
			if err := useProof(tx, userID, *proof, at); err != nil {
				return err
			}
		}
		res := tx.Exec("UPDATE sessions SET amr = ?, auth_time = ? WHERE id = ? AND user_id = ? AND "+liveSession,
			amrColumn(amr), at, sessionID, userID, at)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrSessionNotFound
		}
		if _, err := writeAudit(tx, at, withTarget(events, userID, sessionID)); err != nil {
			return err
		}
		w.session(userID, sessionID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("raise session: %w", err)
	}
	return nil
}

// ResetFactors removes every second factor of userID (active or pending TOTP, WebAuthn
// credentials), their recovery codes, unanswered login challenges and WebAuthn ceremonies, and revokes their live sessions, at at, in one
// transaction with events (the user as TargetID), the change log and the Shared Signals
// events (a credential change, and each session revoked). It returns how many sessions it
// revoked, or ErrUserNotFound (an ErrNotFound).
func (s *Store) ResetFactors(ctx context.Context, userID int64, at time.Time, events ...AuditEvent) (int, error) {
	at = utc(at)
	var revoked int
	err := s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		var n int64
		if err := tx.Model(&userRow{}).Where("id = ?", userID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrUserNotFound
		}
		for _, table := range []any{&totpFactorRow{}, &recoveryCodeRow{}, &mfaChallengeRow{}, &webauthnCredentialRow{}, &webauthnCeremonyRow{}} {
			if err := tx.Where("user_id = ?", userID).Delete(table).Error; err != nil {
				return err
			}
		}
		ids, err := revokeUserSessions(tx, userID, at)
		if err != nil {
			return err
		}
		revoked = len(ids)
		if _, err := writeAudit(tx, at, withTarget(events, userID, "")); err != nil {
			return err
		}
		w.user(userID)
		w.event(EventCredentialChange, userID, "", events)
		w.sessionsRevoked(userID, ids, events)
		return nil
	})
	if err != nil {
		return 0, dbErr("reset factors", err, ErrUserNotFound)
	}
	return revoked, nil
}
