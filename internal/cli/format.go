package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"

	"github.com/docker/cli/templates"
)

// Format names understood by every --format flag besides Go templates.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatRaw   = "raw"
)

// Formatter renders rows as a table, JSON lines or a Go template, the way
// the docker CLI's --format does.
type Formatter struct {
	// Format is the --format value: "", "table", "table TEMPLATE",
	// "json", or a template.
	Format string
	// DefaultTable is the template used for "" and "table" (without the
	// "table " prefix), columns separated by \t.
	DefaultTable string
	// Headers maps a row field name to its column header.
	Headers map[string]string
	// Quiet replaces the format with QuietTemplate.
	Quiet         bool
	QuietTemplate string
}

// ParseFormat checks a --format value without rendering anything, so that
// a malformed template is reported before any work is done.
func (f Formatter) ParseFormat() error {
	_, _, err := f.template()
	return err
}

// template returns the parsed template and whether a header line is due.
func (f Formatter) template() (*template.Template, bool, error) {
	format, table := f.Format, false
	switch {
	case f.Quiet:
		format = f.QuietTemplate
	case format == "" || format == FormatTable:
		format, table = f.DefaultTable, true
	case format == FormatJSON:
		format = "{{json .}}"
	case strings.HasPrefix(format, "table "):
		format, table = strings.TrimPrefix(format, "table "), true
	}
	format = unescape(format)
	tmpl, err := templates.Parse(format)
	if err != nil {
		return nil, false, fmt.Errorf("template parsing error: %w", err)
	}
	return tmpl, table, nil
}

// unescape turns the \t and \n typed on a command line into real ones, as
// the docker CLI does.
func unescape(s string) string {
	return strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(s)
}

// Write renders rows to w. Each row is executed against the template; a
// table gets a header line and aligned columns.
func (f Formatter) Write(w io.Writer, rows []any) error {
	tmpl, table, err := f.template()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, r := range rows {
		if err := tmpl.Execute(&buf, r); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		buf.WriteByte('\n')
	}
	if !table {
		_, err := w.Write(buf.Bytes())
		return err
	}
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	var head bytes.Buffer
	if err := tmpl.Option("missingkey=zero").Execute(&head, f.headerRow()); err == nil {
		tw.Write(head.Bytes())
		tw.Write([]byte{'\n'})
	}
	tw.Write(buf.Bytes())
	return tw.Flush()
}

// headerRow is what a table template is executed against for its header:
// every field name maps to its header (or the name in upper case).
func (f Formatter) headerRow() map[string]string {
	h := map[string]string{}
	for k, v := range f.Headers {
		h[k] = v
	}
	return h
}

// WriteJSON writes v as indented JSON, the form of inspect commands.
func WriteJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// WriteInspect renders inspected objects: indented JSON list by default,
// or each object through a template.
func WriteInspect(w io.Writer, format string, objs []any, raws [][]byte) error {
	if format == "" || format == FormatJSON {
		if len(objs) == 0 {
			_, err := io.WriteString(w, "[]\n")
			return err
		}
		var msgs []json.RawMessage
		for i := range objs {
			if i < len(raws) && raws[i] != nil {
				msgs = append(msgs, raws[i])
				continue
			}
			b, err := json.Marshal(objs[i])
			if err != nil {
				return err
			}
			msgs = append(msgs, b)
		}
		b, err := json.MarshalIndent(msgs, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tmpl, err := templates.Parse(unescape(format))
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	var buf bytes.Buffer
	for i, o := range objs {
		// Templates see the typed object first; one that names the JSON
		// fields (.Id) instead falls back to the raw JSON, as docker's.
		var one bytes.Buffer
		err := tmpl.Execute(&one, o)
		if err != nil && i < len(raws) && raws[i] != nil {
			var m any
			dec := json.NewDecoder(bytes.NewReader(raws[i]))
			dec.UseNumber()
			if dec.Decode(&m) == nil {
				one.Reset()
				err = tmpl.Execute(&one, m)
			}
		}
		if err != nil {
			return fmt.Errorf("template: %w", err)
		}
		buf.Write(one.Bytes())
		buf.WriteByte('\n')
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// rowJSON marshals a row context as the object of its exported,
// argument-less methods, which is what {{json .}} prints for a row.
func rowJSON(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	m := map[string]any{}
	for i := 0; i < rt.NumMethod(); i++ {
		meth := rt.Method(i)
		if meth.Type.NumIn() != 1 || meth.Type.NumOut() != 1 || meth.Name == "MarshalJSON" {
			continue
		}
		m[meth.Name] = rv.Method(i).Call(nil)[0].Interface()
	}
	return json.Marshal(m)
}

// parseTemplate parses a --format template with docker's functions.
func parseTemplate(format string) (*template.Template, error) {
	t, err := templates.Parse(unescape(format))
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return t, nil
}
