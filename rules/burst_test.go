package rules

import (
	"reflect"
	"testing"
	"testing/fstest"
	"time"
)

// The shipped burst rules and the burst defaults decode to what README
// documents.
func TestBurstRules(t *testing.T) {
	pack, diags := Builtin()
	if diags.HasErrors() {
		t.Fatal(diags.Errors().Error())
	}
	month := Duration(30 * 24 * time.Hour)
	for _, tc := range []struct {
		id       string
		want     Burst
		severity string
		where    string
	}{
		{"aws-burst-secret-reads", Burst{By: []string{"identity"}, Partition: []string{"account"}, Count: CountEvents, History: month, MinCount: 5}, "medium", "action"},
		{"aws-burst-access-denied", Burst{By: []string{"identity"}, Partition: []string{"account"}, Count: CountEvents, History: month, MinCount: 5}, "low", "error_code"},
		{"aws-burst-regions", Burst{By: []string{"identity"}, Partition: []string{"account"}, Count: CountDistinct, Field: "region", History: month, MinCount: 4}, "low", ""},
	} {
		t.Run(tc.id, func(t *testing.T) {
			r, ok := pack.Get(tc.id)
			if !ok {
				t.Fatal("missing")
			}
			if r.Type != TypeBurst || r.Burst == nil || !reflect.DeepEqual(*r.Burst, tc.want) {
				t.Errorf("burst = %+v, want %+v", r.Burst, tc.want)
			}
			if r.Severity != tc.severity || r.AnomalyThreshold != 50 || r.MaxSignals != 100 || r.Context == nil {
				t.Errorf("severity %s threshold %v max %d context %v", r.Severity, r.AnomalyThreshold, r.MaxSignals, r.Context)
			}
			if tc.where != "" && len(r.Source.Where.Terms[tc.where]) == 0 {
				t.Errorf("no where on %s: %+v", tc.where, r.Source.Where)
			}
			if !reflect.DeepEqual(r.Entity(), []string{"identity"}) {
				t.Errorf("entity %v", r.Entity())
			}
		})
	}

	const minimal = "id: b\nname: B\ntype: burst\nsource: {index: logs-*}\n"
	p, diags := LoadFS(fstest.MapFS{"r.yml": {Data: []byte(minimal)}}, "r.yml")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	want := Burst{By: []string{"identity"}, Count: CountEvents, History: DefaultHistory, MinCount: DefaultBurstMinCount}
	if got := p.Rules[0].Burst; got == nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
}
