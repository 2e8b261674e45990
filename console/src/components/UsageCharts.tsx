import { Card, Group, SegmentedControl, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { useMemo, useState } from "react";
import {
  Area,
  AreaChart,
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import type { Environment } from "../lib/environment";
import { useResource } from "../lib/useResource";
import { Empty, ErrorAlert, Loading } from "./ui";

/** Calls by status class. */
export type ByStatus = { "2xx": number; "3xx": number; "4xx": number; "5xx": number };
export type Latency = { p50: number; p95: number; p99: number } | null;
export type UsageCounts = {
  calls: number;
  admitted: number;
  by_status: ByStatus;
  by_error: Record<string, number>;
  latency_ms: Latency;
};

/** `GET /api/api-keys/:id/usage` and `GET /api/usage`: calls per bucket, from hourly rollups. */
export type UsageReport = {
  from: string;
  to: string;
  bucket: "hour" | "day";
  environment: Environment | null;
  api_key_id?: number;
  totals: UsageCounts;
  /** Every bucket of the range, oldest first; those without calls are zero. */
  buckets: (UsageCounts & { start: string })[];
  top_routes: { route: string; calls: number }[];
  top_ips: { ip: string; calls: number }[];
};

/** The ranges offered, and the bucket each is read in. */
export const USAGE_RANGES = {
  "24h": { label: "24 h", hours: 24, bucket: "hour", words: "the last 24 hours" },
  "7d": { label: "7 d", hours: 24 * 7, bucket: "hour", words: "the last 7 days" },
  "30d": { label: "30 d", hours: 24 * 30, bucket: "day", words: "the last 30 days" },
} as const;
export type UsageRange = keyof typeof USAGE_RANGES;

/** The report's address: one key's (`keyId`) or every visible key's, over `range` up to `now`. */
export function usagePath(
  range: UsageRange,
  now: number,
  opts: { keyId?: number; environment?: Environment } = {},
): string {
  const r = USAGE_RANGES[range];
  const params = new URLSearchParams({
    from: new Date(now - r.hours * 3_600_000).toISOString(),
    to: new Date(now).toISOString(),
    bucket: r.bucket,
  });
  if (opts.environment) params.set("environment", opts.environment);
  return opts.keyId === undefined
    ? `/api/usage?${params}`
    : `/api/api-keys/${opts.keyId}/usage?${params}`;
}

const STATUS_SERIES: { key: keyof ByStatus; label: string; color: string }[] = [
  { key: "2xx", label: "2xx", color: "var(--mantine-color-teal-6)" },
  { key: "3xx", label: "3xx", color: "var(--mantine-color-blue-5)" },
  { key: "4xx", label: "4xx", color: "var(--mantine-color-orange-5)" },
  { key: "5xx", label: "5xx", color: "var(--mantine-color-red-7)" },
];

const hourTick = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayTick = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const fullTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});
const fullDay = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  day: "numeric",
  month: "short",
  year: "numeric",
});

const ms = (v: number | undefined) =>
  v === undefined ? "—" : v < 10 ? `${v.toFixed(2)} ms` : `${Math.round(v)} ms`;

const share = (n: number, of: number) =>
  of === 0 ? "0 %" : `${((n / of) * 100).toFixed(n === of || n === 0 ? 0 : 1)} %`;

function Fact({ label, value, hint }: { label: string; value: string; hint?: string }) {
  return (
    <div>
      <Text size="xs" c="dimmed" tt="uppercase" fw={600}>
        {label}
      </Text>
      <Text fz="lg" fw={700} lh={1.3}>
        {value}
      </Text>
      {hint && (
        <Text size="xs" c="dimmed">
          {hint}
        </Text>
      )}
    </div>
  );
}

function TopList<T>({
  title,
  rows,
  name,
  calls,
  empty,
}: {
  title: string;
  rows: T[];
  name: (row: T) => string;
  calls: (row: T) => number;
  empty: string;
}) {
  return (
    <div>
      <Title order={3} size="h6" mb={4}>
        {title}
      </Title>
      {rows.length === 0 ? (
        <Text size="sm" c="dimmed">
          {empty}
        </Text>
      ) : (
        // A list, not a table: it reads the same on a phone, with nothing to scroll sideways.
        <Stack component="ul" gap={2} p={0} m={0} style={{ listStyle: "none" }} aria-label={title}>
          {rows.map((r) => (
            <Group component="li" key={name(r)} justify="space-between" wrap="nowrap" gap="sm">
              <Text size="xs" ff="monospace" truncate="end" title={name(r)} miw={0}>
                {name(r)}
              </Text>
              <Text size="xs" style={{ flexShrink: 0 }}>
                {calls(r).toLocaleString()}
              </Text>
            </Group>
          ))}
        </Stack>
      )}
    </div>
  );
}

/**
 * Usage of one key (`keyId`) or of every key the user may see: calls by status class over
 * time, latency p50/p95/p99, totals, and the busiest routes and client addresses, for the
 * last 24 hours, 7 days or 30 days.
 */
export function UsageCharts({
  keyId,
  environment,
  title = "Usage",
}: {
  keyId?: number;
  environment?: Environment;
  title?: string;
}) {
  const [range, setRange] = useState<UsageRange>("24h");
  const [asked, setAsked] = useState(() => Date.now());
  const path = useMemo(
    () => usagePath(range, asked, { keyId, environment }),
    [range, asked, keyId, environment],
  );
  const usage = useResource<UsageReport>(path);
  const report = usage.data;
  const r = USAGE_RANGES[range];
  const day = report?.bucket === "day";

  const series = useMemo(
    () =>
      (report?.buckets ?? []).map((b) => ({
        t: Date.parse(b.start),
        ...b.by_status,
        p50: b.latency_ms?.p50 ?? null,
        p95: b.latency_ms?.p95 ?? null,
        p99: b.latency_ms?.p99 ?? null,
      })),
    [report],
  );
  const domain: [number, number] | undefined = report
    ? [Date.parse(report.from), Date.parse(report.to)]
    : undefined;
  const tick = (v: number) => (day || range !== "24h" ? dayTick : hourTick).format(new Date(v));
  const label = (v: unknown) => (day ? fullDay : fullTime).format(new Date(Number(v)));
  const xAxis = (
    <XAxis
      dataKey="t"
      type="number"
      scale="time"
      domain={domain ?? ["dataMin", "dataMax"]}
      tickFormatter={tick}
      minTickGap={28}
      tick={{ fontSize: 11 }}
    />
  );

  const t = report?.totals;
  const errors = t ? t.by_status["4xx"] + t.by_status["5xx"] : 0;
  const topErrors = t
    ? Object.entries(t.by_error)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
    : [];

  return (
    <Card withBorder radius="md" padding="md" mb="lg" data-testid="usage">
      <Group justify="space-between" mb="sm" gap="sm">
        <Title order={2} size="h4">
          {title}
        </Title>
        <SegmentedControl
          size="xs"
          aria-label="Range"
          value={range}
          onChange={(v) => {
            setRange(v as UsageRange);
            setAsked(Date.now());
          }}
          data={Object.entries(USAGE_RANGES).map(([value, x]) => ({ value, label: x.label }))}
        />
      </Group>
      <ErrorAlert error={usage.error} title="Usage not loaded" onRetry={usage.reload} />
      {!report && usage.loading && <Loading label="Loading usage…" />}
      {report && t && t.calls === 0 && (
        <Empty
          title={`No calls in ${r.words}`}
          description={
            keyId === undefined
              ? "Calls made with any key you can see are counted here, within a minute of being made."
              : "Calls made with this key are counted here, within a minute of being made."
          }
        />
      )}
      {report && t && t.calls > 0 && (
        <Stack gap="md">
          <SimpleGrid cols={{ base: 2, sm: 4 }} data-testid="usage-totals">
            <Fact
              label="Calls"
              value={t.calls.toLocaleString()}
              hint={`${t.admitted.toLocaleString()} admitted`}
            />
            <Fact
              label="Errors"
              value={share(errors, t.calls)}
              hint={
                topErrors.length
                  ? topErrors.map(([code, n]) => `${code} ${n}`).join(" · ")
                  : `${errors.toLocaleString()} with 4xx or 5xx`
              }
            />
            <Fact label="p50 latency" value={ms(t.latency_ms?.p50)} />
            <Fact
              label="p95 latency"
              value={ms(t.latency_ms?.p95)}
              hint={t.latency_ms ? `p99 ${ms(t.latency_ms.p99)}` : undefined}
            />
          </SimpleGrid>
          <div
            role="img"
            aria-label={`Usage: calls per ${report.bucket} by status class over ${r.words}: ${t.by_status["2xx"]} 2xx, ${t.by_status["3xx"]} 3xx, ${t.by_status["4xx"]} 4xx, ${t.by_status["5xx"]} 5xx`}
            data-testid="usage-calls-chart"
          >
            <ResponsiveContainer
              width="100%"
              height={220}
              initialDimension={{ width: 600, height: 220 }}
            >
              <AreaChart data={series} margin={{ top: 8, right: 12, bottom: 0, left: 0 }}>
                <CartesianGrid strokeDasharray="3 3" vertical={false} />
                {xAxis}
                <YAxis allowDecimals={false} width={48} tick={{ fontSize: 11 }} />
                <Tooltip labelFormatter={label} />
                <Legend verticalAlign="bottom" height={24} />
                {STATUS_SERIES.map((s) => (
                  <Area
                    key={s.key}
                    dataKey={s.key}
                    name={s.label}
                    stackId="status"
                    type="linear"
                    stroke={s.color}
                    fill={s.color}
                    fillOpacity={0.5}
                    isAnimationActive={false}
                  />
                ))}
              </AreaChart>
            </ResponsiveContainer>
          </div>
          <div
            role="img"
            aria-label={`Usage: latency per ${report.bucket} over ${r.words}: p50 ${ms(t.latency_ms?.p50)}, p95 ${ms(t.latency_ms?.p95)} overall`}
            data-testid="usage-latency-chart"
          >
            <ResponsiveContainer
              width="100%"
              height={180}
              initialDimension={{ width: 600, height: 180 }}
            >
              <LineChart data={series} margin={{ top: 8, right: 12, bottom: 0, left: 0 }}>
                <CartesianGrid strokeDasharray="3 3" vertical={false} />
                {xAxis}
                <YAxis width={48} tick={{ fontSize: 11 }} unit=" ms" />
                <Tooltip
                  labelFormatter={label}
                  formatter={(v) => (typeof v === "number" ? ms(v) : String(v))}
                />
                <Legend verticalAlign="bottom" height={24} />
                <Line
                  dataKey="p50"
                  name="p50"
                  stroke="var(--mantine-color-blue-6)"
                  dot={false}
                  isAnimationActive={false}
                />
                <Line
                  dataKey="p95"
                  name="p95"
                  stroke="var(--mantine-color-grape-6)"
                  dot={false}
                  isAnimationActive={false}
                />
                <Line
                  dataKey="p99"
                  name="p99"
                  stroke="var(--mantine-color-gray-5)"
                  strokeDasharray="4 3"
                  dot={false}
                  isAnimationActive={false}
                />
              </LineChart>
            </ResponsiveContainer>
          </div>
          <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="lg">
            <TopList
              title="Busiest routes"
              rows={report.top_routes}
              name={(x) => x.route}
              calls={(x) => x.calls}
              empty="No route recorded."
            />
            <TopList
              title="Busiest addresses"
              rows={report.top_ips}
              name={(x) => x.ip}
              calls={(x) => x.calls}
              empty="No address recorded."
            />
          </SimpleGrid>
        </Stack>
      )}
    </Card>
  );
}
