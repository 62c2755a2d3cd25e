package detector

// The learned-hours model: when an actor works, learned from its own
// history, with strength shared the way people actually work.
//
//   - Neighbouring hours share: activity at 18:00 makes 19:00 and 20:00
//     plausible (kernel weights 1, ½, ¼ for 0, 1, 2 hours away).
//   - Weekends borrow the weekday shape: someone who works 09:00–17:00 on
//     weekdays and a few weekends works weekend middays, not weekend
//     nights. How much of the actor's time goes to weekends is its own
//     rate, shrunk towards 2 in 7 days' worth of a few events.
//   - The actor's own rate of unusual-hour work is a floor: a person whose
//     history has 3 % of events far from their core hours (on-call nights,
//     late fixes) is never "1 in 150,000" at 03:00.
//   - Automation is recognised by the regularity of its schedule, not by
//     its volume: a job that ran on 7 or more separate hours, all within
//     at most 3 slots of the week, is scheduled; nothing is shared across
//     hours for it, and its floor is the chance that a run strays
//     (½ in runs + 1), spread over the week: a scheduled role acting at
//     another hour is strongly anomalous.

// hourProfile is an entity's activity per slot over its history.
type hourProfile struct {
	counts [48]int64
	total  int64
	runs   int64 // distinct history hours with activity
}

func (p *hourProfile) add(s slot, n int64) {
	p.counts[s.index()] += n
	p.total += n
	p.runs++
}

// Model constants; README "Off hours" documents them.
const (
	weekendPrior     = 10.0 // pseudo-events pulling the weekend share to 2/7
	weekendBorrow    = 0.3  // weight of the weekday shape in a weekend hour
	coreShare        = 0.05 // a slot under 5 % of the busiest is outside the core
	minUnusualRate   = 0.002
	scheduledMinRuns = 7
)

var hourKernel = [...]float64{1, 0.5, 0.25} // 0, 1, 2 hours away

// activeSlots counts slots with any activity: round-the-clock identities
// use most of them.
func (p *hourProfile) activeSlots() int {
	n := 0
	for _, c := range p.counts {
		if c > 0 {
			n++
		}
	}
	return n
}

// Hour-profile automation: round the clock (most slots), or a scheduled
// job (regular runs confined to a few hours of the week). People spread
// over a working day's eight or more slots.
const (
	roundTheClockSlots = 40
	scheduledMaxSlots  = 3
)

func (p *hourProfile) scheduled() bool {
	n := p.activeSlots()
	return n > 0 && n <= scheduledMaxSlots && p.runs >= scheduledMinRuns
}

func (p *hourProfile) automated() bool {
	return p.activeSlots() >= roundTheClockSlots || p.scheduled()
}

// smoothed is the kernel-smoothed count of hour h of day type d (0
// weekday, 1 weekend), circular over the day.
func (p *hourProfile) smoothed(d, h int) float64 {
	var c float64
	for k, w := range hourKernel {
		if k == 0 {
			c += w * float64(p.counts[d*24+h])
			continue
		}
		c += w * float64(p.counts[d*24+(h+k)%24]+p.counts[d*24+(h+24-k)%24])
	}
	return c
}

// probability of an event of the entity falling in slot s.
func (p *hourProfile) probability(s slot) float64 {
	if p.total == 0 {
		return 1.0 / 48 // no history: nothing to compare with
	}
	if p.scheduled() {
		stray := 0.5 / float64(p.runs+1)
		return (1-stray)*float64(p.counts[s.index()])/float64(p.total) + stray/48
	}
	var smooth [2][24]float64
	var dayTotal [2]float64
	for d := 0; d < 2; d++ {
		for h := 0; h < 24; h++ {
			smooth[d][h] = p.smoothed(d, h)
		}
	}
	// Weekends borrow the weekday shape, scaled to the weekend's volume.
	var wdSum, weSum float64
	for h := 0; h < 24; h++ {
		wdSum += smooth[0][h]
		weSum += smooth[1][h]
	}
	for h := 0; h < 24; h++ {
		if wdSum > 0 {
			smooth[1][h] += weekendBorrow * smooth[0][h] / wdSum * max(weSum, 1)
		}
		dayTotal[0] += smooth[0][h]
		dayTotal[1] += smooth[1][h]
	}
	var weekend int64
	for h := 24; h < 48; h++ {
		weekend += p.counts[h]
	}
	share := [2]float64{}
	share[1] = (float64(weekend) + weekendPrior*2/7) / (float64(p.total) + weekendPrior)
	share[0] = 1 - share[1]
	d := 0
	if s.weekend {
		d = 1
	}
	shape := 0.0
	if dayTotal[d] > 0 {
		shape = smooth[d][s.hour] / dayTotal[d]
	}
	u := p.unusualRate()
	return (1-u)*share[d]*shape + u/48
}

// unusualRate is the share of the entity's events outside its core hours
// (slots under coreShare of the busiest smoothed slot), smoothed, and at
// least minUnusualRate: its own habit of working at odd hours.
func (p *hourProfile) unusualRate() float64 {
	var peak float64
	var sm [48]float64
	for i := range sm {
		sm[i] = p.smoothed(i/24, i%24)
		peak = max(peak, sm[i])
	}
	var off int64
	for i, c := range p.counts {
		if sm[i] < coreShare*peak {
			off += c
		}
	}
	return max(minUnusualRate, float64(off+1)/float64(p.total+10))
}
