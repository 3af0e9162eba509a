package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText writes the human report: one line per check, the detail
// under it, and a summary.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "ztlog adapter contract conformance: %s\n\n", r.Target)
	for _, c := range r.Results {
		fmt.Fprintf(w, "%-4s  %-13s %s (%s)\n", strings.ToUpper(string(c.Status)), c.ID, c.Title, c.Duration.Round(time.Millisecond))
		if c.Detail != "" {
			fmt.Fprintf(w, "      %13s %s\n", "", c.Detail)
		}
		if c.Status == Fail {
			fmt.Fprintf(w, "      %13s see %s\n", "", c.Must)
		}
	}
	_, err := fmt.Fprintf(w, "\n%d passed, %d failed, %d skipped\n", r.Count(Pass), r.Count(Fail), r.Count(Skip))
	return err
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// JUnit XML, as CI systems read it.
type junitSuites struct {
	XMLName xml.Name   `xml:"testsuites"`
	Suites  []junitRun `xml:"testsuite"`
}

type junitRun struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML: one testcase per check,
// named by its ID.
func (r *Report) WriteJUnit(w io.Writer) error {
	run := junitRun{Name: "ztlog-conformance " + r.Target, Tests: len(r.Results), Failures: r.Count(Fail), Skipped: r.Count(Skip)}
	var total float64
	for _, c := range r.Results {
		total += c.Duration.Seconds()
		tc := junitCase{Name: c.ID + " " + c.Title, Classname: "ztlog.conformance", Time: fmt.Sprintf("%.3f", c.Duration.Seconds())}
		switch c.Status {
		case Fail:
			tc.Failure = &junitMessage{Message: c.Detail, Text: c.Detail + "\nrequirement: " + c.Must}
		case Skip:
			tc.Skipped = &junitMessage{Message: c.Detail}
		default:
			tc.SystemOut = c.Detail
		}
		run.Cases = append(run.Cases, tc)
	}
	run.Time = fmt.Sprintf("%.3f", total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitRun{run}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
