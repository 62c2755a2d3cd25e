package main

import (
	"os"

	"github.com/offtrail/offtrail/internal/config"
	"github.com/offtrail/offtrail/notify"
	"github.com/offtrail/offtrail/notify/channels"
	"github.com/offtrail/offtrail/schedule"
)

// reload is what SIGHUP does: the configuration file is read again for its
// rules, exceptions and notification channels (with skip_invalid_rules
// and timezone; the store, indices and listener stay as started). Each
// part that fails keeps what runs, logged:
//   - an unreadable or invalid configuration file keeps the running one,
//     and rules and exceptions are reloaded from its paths;
//   - channels that fail to build keep the running channels, and the new
//     rules are checked against those;
//   - invalid rules or exceptions keep the running rules, exceptions and
//     channels.
//
// New channels take over only with the new rules; messages already queued
// are delivered through the channels they were queued on (notify.Adopt).
func reload(env *cliEnv, cfgPath string, excFlag []string, running *config.Config, disp *notify.Dispatcher, m *schedule.Manager) {
	next := running
	if cfgPath != "" {
		c, err := config.Load(cfgPath, os.Getenv)
		if err != nil {
			env.log.Error().Err(err).Msg("configuration reload failed; keeping the running configuration and channels")
		} else {
			next = c
			next.Listen = running.Listen
		}
	}
	if len(excFlag) > 0 {
		next.Exceptions = excFlag
	}
	check := disp
	var nextDisp *notify.Dispatcher
	if next != running {
		d, err := channels.Build(&next.Notifications, env.log.With().Str("component", "notify").Logger(), nil)
		if err != nil {
			env.log.Error().Err(err).Strs("channels", disp.Channels()).Msg("notification channels invalid; keeping the running channels")
		} else {
			nextDisp, check = d, d
		}
	}
	rs, err := runRules(env, next, check)
	if err != nil {
		env.log.Error().Err(err).Msg("reload failed; keeping the running rules, exceptions and channels")
		return
	}
	if nextDisp != nil {
		if err := disp.Adopt(nextDisp); err != nil {
			env.log.Error().Err(err).Msg("notification channels not swapped")
			return
		}
	}
	m.Reload(rs)
	env.log.Info().Int("rules", len(rs)).Strs("exceptions", next.Exceptions).Strs("channels", disp.Channels()).Msg("reloaded")
}
