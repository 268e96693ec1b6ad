// Config overrides from the command line: `native train --set train.lr=0.001
// --set exec=film` changes single fields of the resolved config without a
// JSON file of its own, and every change goes through the strict parser and
// Validate, so a misspelt key or a bad value is an error that names it.

package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nli-go/nli/model"
)

// setFlags collects repeated --set key=value flags.
type setFlags []string

func (s *setFlags) String() string { return strings.Join(*s, " ") }

func (s *setFlags) Set(v string) error {
	key, _, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(key) == "" {
		return fmt.Errorf("%q: want key=value with a JSON config key, e.g. train.lr=0.001 or exec=film", v)
	}
	*s = append(*s, v)
	return nil
}

// applySets returns cfg with each key=value of sets applied in order. A key
// is a dotted path of the config's JSON names (train.head_lr_mult, K,
// search.starts); a value is JSON (numbers, true, "text") or else a bare
// string (film). The result is parsed strictly and validated.
func applySets(cfg model.Config, sets []string) (model.Config, error) {
	if len(sets) == 0 {
		return cfg, nil
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return model.Config{}, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return model.Config{}, err
	}
	for _, s := range sets {
		key, val, _ := strings.Cut(s, "=")
		var v any
		if err := json.Unmarshal([]byte(val), &v); err != nil {
			v = val
		}
		path := strings.Split(strings.TrimSpace(key), ".")
		obj := doc
		for _, p := range path[:len(path)-1] {
			sub, ok := obj[p].(map[string]any)
			if !ok {
				return model.Config{}, fmt.Errorf("--set %s: %q is not a section of the config (sections: train, search)", s, p)
			}
			obj = sub
		}
		obj[path[len(path)-1]] = v
	}
	raw, err = json.Marshal(doc)
	if err != nil {
		return model.Config{}, err
	}
	c, err := model.ParseConfig(raw)
	if err != nil {
		return model.Config{}, fmt.Errorf("--set %s: %w", strings.Join(sets, " "), err)
	}
	return c, nil
}

// applySearchSets applies --set overrides to the search section of a trained
// model's config (eval, solve, curve): only search.* keys are allowed,
// since every other field is fixed by the weights.
func applySearchSets(cfg model.Config, sets []string) (model.SearchConfig, error) {
	for _, s := range sets {
		key, _, _ := strings.Cut(s, "=")
		if !strings.HasPrefix(strings.TrimSpace(key), "search.") {
			return model.SearchConfig{}, fmt.Errorf("--set %s: only search.* fields can be changed for trained weights (e.g. search.sigma=1)", s)
		}
	}
	c, err := applySets(cfg, sets)
	if err != nil {
		return model.SearchConfig{}, err
	}
	return c.Search, nil
}
