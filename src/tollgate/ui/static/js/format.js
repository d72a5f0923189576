// Numbers with their unit: dollars (enough decimals to show sub-cent spend), tokens, time.

const grouped = (n, digits) => n.toLocaleString("en-US", { minimumFractionDigits: digits,
  maximumFractionDigits: digits });

export function usd(value) {
  if (value === null || value === undefined || value === "") return "—";
  const n = Number(value);
  if (!Number.isFinite(n)) return "—";
  if (n === 0) return "$0.00";
  const a = Math.abs(n);
  // $12.34, $0.0123, $0.000042: two significant digits below a cent.
  const digits = a >= 1 ? 2 : a >= 0.01 ? 4 : Math.min(10, Math.ceil(-Math.log10(a)) + 1);
  return (n < 0 ? "-$" : "$") + grouped(a, digits);
}

export function count(value, unit = "") {
  if (value === null || value === undefined) return "—";
  const text = Number(value).toLocaleString("en-US");
  return unit ? `${text} ${unit}` : text;
}

export function tokens(value) {
  return count(value, Number(value) === 1 ? "token" : "tokens");
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function day(iso) {
  return iso ? String(iso).slice(0, 10) : "—";
}

export function ms(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(2)} s`;
}

export function latency(row) {
  const start = Date.parse(row.startTime), end = Date.parse(row.endTime);
  return Number.isFinite(start) && Number.isFinite(end) ? end - start : null;
}

export function limit(value, unit) {
  return value === null || value === undefined ? "unlimited" : `${count(value)} ${unit}`;
}

export function budget(max, duration) {
  if (max === null || max === undefined) return "no budget";
  return duration ? `${usd(max)} per ${duration}` : `${usd(max)} total`;
}

export function isoDate(date) {
  return date.toISOString().slice(0, 10);
}
