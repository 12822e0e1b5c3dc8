// stress_plot: renders a stress report (JSON from --report) as one SVG, so a person sees at a
// glance whether memory is flat: three panels over the same time axis — throughput (ops/s),
// RSS (with the warm-up mark and the baseline +- the allowed growth when the run judged it), and
// child caches (dying in red, live in grey). Written without any plotting library: the machines
// have none we may rely on, and SVG is plain text.
//
//   stress_plot REPORT.json OUT.svg
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "json.h"

namespace {

using cgslab::stress::json::Value;

std::vector<double> column(const Value& series, const std::string& key) {
  std::vector<double> out;
  if (const Value* v = series.get(key); v && v->kind == Value::kArray)
    for (auto& x : v->items) out.push_back(x.kind == Value::kNumber ? x.n : NAN);
  return out;
}

double nice_step(double range) {
  if (range <= 0) return 1;
  double raw = range / 5, mag = std::pow(10, std::floor(std::log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

std::string fmt(double v) {
  char b[32];
  if (std::fabs(v) >= 100 || v == std::floor(v))
    std::snprintf(b, sizeof b, "%.0f", v);
  else
    std::snprintf(b, sizeof b, "%.2g", v);
  return b;
}

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else o += c;
  }
  return o;
}

struct Line {
  std::vector<double> y;
  const char* color;
  const char* label;
  double width;
};

// One panel at vertical offset `top`. xs in display units.
void panel(std::ostringstream& svg, double top, double height, const std::string& title, const std::vector<double>& xs,
           double xmax, const std::vector<Line>& lines, const std::vector<std::string>& extra) {
  const double left = 70, width = 800;
  double ymax = 0;
  for (auto& l : lines)
    for (double v : l.y)
      if (std::isfinite(v)) ymax = std::max(ymax, v);
  ymax = ymax <= 0 ? 1 : ymax * 1.1;
  double ystep = nice_step(ymax);
  ymax = std::ceil(ymax / ystep) * ystep;
  auto X = [&](double x) { return left + (xmax > 0 ? x / xmax : 0) * width; };
  auto Y = [&](double y) { return top + height - (y / ymax) * height; };
  svg << "<text x='" << left << "' y='" << top - 8 << "' font-size='13' font-weight='bold'>" << esc(title) << "</text>\n";
  svg << "<rect x='" << left << "' y='" << top << "' width='" << width << "' height='" << height
      << "' fill='none' stroke='#888'/>\n";
  for (double y = 0; y <= ymax + ystep / 2; y += ystep) {
    svg << "<line x1='" << left << "' x2='" << left + width << "' y1='" << Y(y) << "' y2='" << Y(y)
        << "' stroke='#eee'/>\n";
    svg << "<text x='" << left - 6 << "' y='" << Y(y) + 4 << "' font-size='10' text-anchor='end'>" << fmt(y) << "</text>\n";
  }
  double xstep = nice_step(xmax);
  for (double x = 0; x <= xmax + xstep / 2 && xmax > 0; x += xstep)
    svg << "<text x='" << X(x) << "' y='" << top + height + 13 << "' font-size='10' text-anchor='middle'>" << fmt(x)
        << "</text>\n";
  for (auto& e : extra) svg << e;
  double lx = left + 10;
  for (auto& l : lines) {
    std::string pts;
    for (size_t i = 0; i < xs.size() && i < l.y.size(); ++i)
      if (std::isfinite(l.y[i])) pts += std::to_string(X(xs[i])) + "," + std::to_string(Y(l.y[i])) + " ";
    svg << "<polyline fill='none' stroke='" << l.color << "' stroke-width='" << l.width << "' points='" << pts << "'/>\n";
    if (xs.size() == 1 && !l.y.empty())
      svg << "<circle cx='" << X(xs[0]) << "' cy='" << Y(l.y[0]) << "' r='3' fill='" << l.color << "'/>\n";
    svg << "<text x='" << lx << "' y='" << top + 14 << "' font-size='11' fill='" << l.color << "'>" << l.label << "</text>\n";
    lx += 9.0 * double(std::string(l.label).size()) + 20;
  }
  // Stash the scale for callers drawing extras after the fact (not needed: extras take X/Y via capture).
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: stress_plot REPORT.json OUT.svg\n");
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "stress_plot: cannot read %s\n", argv[1]);
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  Value r;
  std::string err;
  if (!cgslab::stress::json::parse(ss.str(), &r, &err)) {
    std::fprintf(stderr, "stress_plot: %s: %s\n", argv[1], err.c_str());
    return 1;
  }
  const Value* series = r.get("series");
  if (!series || series->kind != Value::kObject) {
    std::fprintf(stderr, "stress_plot: %s has no \"series\" object\n", argv[1]);
    return 1;
  }
  std::vector<double> t = column(*series, "t_s");
  double tmax = t.empty() ? 1 : *std::max_element(t.begin(), t.end());
  double unit = 1;
  std::string uname = "s";
  if (tmax > 7200) unit = 3600, uname = "h";
  else if (tmax > 600) unit = 60, uname = "min";
  std::vector<double> xs;
  for (double v : t) xs.push_back(v / unit);
  double xmax = std::max(tmax, r.num("elapsed_s", tmax)) / unit;

  std::vector<double> ops = column(*series, "ops_per_s");
  for (double& v : ops) v /= 1e6;
  std::vector<double> rss = column(*series, "rss_mb");
  std::vector<double> livemem = column(*series, "live_mb");
  std::vector<double> dying = column(*series, "dying_caches");
  std::vector<double> live = column(*series, "live_caches");

  const Value* rv = r.get("rss");
  std::ostringstream svg;
  const double W = 900, H = 790;
  svg << "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' width='" << W
      << "' height='" << H << "' font-family='sans-serif'>\n<rect width='100%' height='100%' fill='white'/>\n";
  std::string verdict = r.str("verdict", "?");
  char head[512];
  std::snprintf(head, sizeof head, "%s — %s build — %s — seed %.0f — %u threads — %.0f s", r.str("tool").c_str(),
                r.str("build").c_str(), verdict == "pass" ? "PASS" : "FAIL", r.num("seed"), unsigned(r.num("threads")),
                r.num("elapsed_s"));
  svg << "<text x='70' y='24' font-size='15' font-weight='bold' fill='" << (verdict == "pass" ? "#161" : "#b11")
      << "'>" << esc(head) << "</text>\n";
  std::string sub;
  if (rv && rv->kind == Value::kObject && rv->get("baseline_mb")) {
    char b[256];
    std::snprintf(b, sizeof b, "%s after warm-up (%.0f s): %.1f -> %.1f MiB (%+.1f%%%s)",
                  rv->str("measure", "rss") == "live" ? "live memory" : "RSS", rv->num("warmup_s"),
                  rv->num("baseline_mb"), rv->num("final_mb"), rv->num("growth_pct"),
                  rv->get("judged") && rv->get("judged")->b
                      ? (", limit " + fmt(rv->num("limit_pct")) + "% / " + fmt(rv->num("slack_mb")) + " MiB").c_str()
                      : ", not judged");
    sub = b;
  } else {
    sub = "RSS: too few samples after warm-up to judge";
  }
  if (verdict != "pass") sub += " — " + r.str("failure").substr(0, 120);
  svg << "<text x='70' y='44' font-size='12'>" << esc(sub) << "</text>\n";

  const double ph = 180;
  panel(svg, 80, ph, "throughput (M ops/s" + std::string(r.str("tool") == "stress_patterns" ? ", cgslab phases" : "") + ")",
        xs, xmax, {{ops, "#1f5fbf", "ops/s", 1.6}}, {});
  // RSS: warm-up mark and the allowed band.
  std::vector<std::string> extra;
  double rmax = 0;
  for (double v : rss)
    if (std::isfinite(v)) rmax = std::max(rmax, v);
  double warm = rv ? rv->num("warmup_s", -1) / unit : -1;
  if (warm >= 0 && xmax > 0) {
    double x = 70 + warm / xmax * 800;
    extra.push_back("<line x1='" + std::to_string(x) + "' x2='" + std::to_string(x) + "' y1='330' y2='" +
                    std::to_string(330 + ph) + "' stroke='#999' stroke-dasharray='4,3'/>\n<text x='" +
                    std::to_string(x + 3) + "' y='" + std::to_string(330 + ph - 4) +
                    "' font-size='10' fill='#666'>warm-up ends</text>\n");
  }
  std::vector<Line> mem = {{rss, "#2a8a2a", "rss", 1.6}};
  if (!livemem.empty()) mem.push_back({livemem, "#8e44ad", "live (malloc'd + cgslab mapped)", 1.2});
  panel(svg, 330, ph, "memory (MiB)", xs, xmax, mem, extra);
  panel(svg, 560, ph, "child caches", xs, xmax, {{live, "#999999", "live", 1.0}, {dying, "#c0392b", "dying", 1.8}}, {});
  svg << "<text x='470' y='" << H - 8 << "' font-size='11' text-anchor='middle'>time (" << uname << ")</text>\n";
  svg << "</svg>\n";
  std::ofstream out(argv[2]);
  out << svg.str();
  if (!out) {
    std::fprintf(stderr, "stress_plot: cannot write %s\n", argv[2]);
    return 1;
  }
  // One machine-readable line for scripts (ci/nightly.sh reads it): key=value pairs.
  double dmax = 0;
  for (double v : dying)
    if (std::isfinite(v)) dmax = std::max(dmax, v);
  const Value* tot = r.get("totals");
  std::printf("verdict=%s ops_per_s=%.0f checks=%.0f rss_baseline_mb=%.1f rss_final_mb=%.1f rss_peak_mb=%.1f "
              "rss_growth_pct=%.1f rss_judged=%s measure=%s dying_caches_max=%.0f samples=%zu\n",
              verdict.c_str(), tot ? tot->num("ops_per_s", NAN) : NAN, tot ? tot->num("checks", NAN) : NAN,
              rv ? rv->num("baseline_mb", NAN) : NAN, rv ? rv->num("final_mb", NAN) : NAN, rmax,
              rv ? rv->num("growth_pct", NAN) : NAN, rv && rv->get("judged") && rv->get("judged")->b ? "yes" : "no",
              rv ? rv->str("measure", "rss").c_str() : "rss",
              dmax, t.size());
  return 0;
}
