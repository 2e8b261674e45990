import {
  Anchor,
  Badge,
  Button,
  Select,
  SimpleGrid,
  Stack,
  Text,
  Textarea,
  TextInput,
} from "@mantine/core";
import { useMemo } from "react";
import { ListTable } from "../components/DataTable";
import {
  closeNew,
  FilterBar,
  ListView,
  NewDialog,
  NoMatch,
  openNew,
  Paging,
} from "../components/ListPage";
import { useNotify } from "../components/Toasts";
import { Empty, FormFooter, PageHeader } from "../components/ui";
import { api } from "../lib/api";
import { upperCase, useForm } from "../lib/form";
import { formatDateTime, formatMoney } from "../lib/format";
import { usePagedList } from "../lib/paging";
import { Link, setQuery, useLocation } from "../lib/router";
import type { Subscriber, Transaction } from "../lib/types";
import { useResource } from "../lib/useResource";
import { dateOnly, type TransactionFormValues, validateTransactionForm } from "../lib/validation";

const PER_PAGE = 50;

function TransactionForm({
  subscribers,
  subscriberId,
  onSubmit,
  onCancel,
}: {
  subscribers: Subscriber[];
  subscriberId: string;
  onSubmit: (body: Record<string, unknown>) => Promise<void>;
  onCancel: () => void;
}) {
  const form = useForm<TransactionFormValues>({
    initial: {
      subscriber_id: subscriberId,
      amount: "",
      currency: "USD",
      type: "payment",
      reference: "",
      description: "",
    },
    validate: validateTransactionForm,
    idPrefix: "tx-new",
  });
  const { values, set, field, text } = form;
  const send = (v: TransactionFormValues) => {
    const body: Record<string, unknown> = {
      subscriber_id: Number(v.subscriber_id),
      amount: v.amount.trim(),
      type: v.type,
    };
    if (v.currency.trim()) body.currency = v.currency.trim();
    if (v.reference.trim()) body.reference = v.reference.trim();
    if (v.description.trim()) body.description = v.description.trim();
    return onSubmit(body);
  };
  return (
    <form
      noValidate
      aria-label="New transaction"
      onSubmit={(e) => {
        e.preventDefault();
        void form.submit(send);
      }}
    >
      <Stack>
        <Select
          label="Subscriber"
          required
          placeholder="Choose a subscriber"
          data={subscribers.map((s) => ({ value: String(s.id), label: s.username }))}
          value={values.subscriber_id || null}
          onChange={(v) => set("subscriber_id", v ?? "")}
          searchable
          nothingFoundMessage="No subscriber by that name"
          data-autofocus
          {...field("subscriber_id")}
        />
        <SimpleGrid cols={{ base: 1, xs: 3 }}>
          <TextInput
            label="Amount"
            required
            inputMode="decimal"
            placeholder="19.99"
            {...text("amount")}
          />
          <TextInput label="Currency" maxLength={3} {...text("currency", upperCase)} />
          <Select
            label="Type"
            data={[
              { value: "payment", label: "Payment" },
              { value: "refund", label: "Refund" },
              { value: "adjustment", label: "Adjustment" },
            ]}
            value={values.type}
            onChange={(v) => set("type", v ?? "payment")}
            allowDeselect={false}
            {...field("type")}
          />
        </SimpleGrid>
        <TextInput
          label="Reference"
          description="Optional, e.g. the invoice number. Recording the same reference again returns the first transaction instead of adding another."
          {...text("reference")}
        />
        <Textarea label="Description" autosize minRows={1} {...text("description")} />
        <Text size="xs" c="dimmed">
          Transactions cannot be changed or deleted: correct a mistake with a refund or an
          adjustment.
        </Text>
        <FormFooter
          error={form.formError}
          errorTitle="Not recorded"
          busy={form.busy}
          submitLabel="Record transaction"
          onCancel={onCancel}
        />
      </Stack>
    </form>
  );
}

export function Transactions() {
  const notify = useNotify();
  const { query } = useLocation();
  const subscriber = query.get("subscriber") ?? "";
  const from = query.get("from") ?? "";
  const to = query.get("to") ?? "";

  const fromError = dateOnly(from);
  const toError = dateOnly(to);
  const list = usePagedList<Transaction>("/api/transactions", PER_PAGE, {
    subscriber_id: subscriber,
    from: fromError ? null : from,
    to: toError ? null : to,
  });
  const subs = useResource<Subscriber[]>("/api/subscribers?per_page=500");
  const subById = useMemo(() => new Map((subs.data ?? []).map((s) => [s.id, s])), [subs.data]);
  const filtered = Boolean(subscriber || from || to);

  return (
    <>
      <PageHeader
        title="Transactions"
        description="Payments, refunds and adjustments on subscribers, newest first."
        actions={<Button onClick={openNew}>Record a transaction</Button>}
      />
      <FilterBar cols={{ base: 1, xs: 3 }}>
        <Select
          label="Subscriber"
          placeholder="Any subscriber"
          data={(subs.data ?? []).map((s) => ({ value: String(s.id), label: s.username }))}
          value={subscriber || null}
          onChange={(v) => setQuery({ subscriber: v, page: null })}
          searchable
          clearable
        />
        <TextInput
          label="From"
          type="date"
          value={from}
          onChange={(e) => setQuery({ from: e.currentTarget.value, page: null })}
          error={fromError ?? undefined}
        />
        <TextInput
          label="To"
          type="date"
          value={to}
          onChange={(e) => setQuery({ to: e.currentTarget.value, page: null })}
          error={toError ?? undefined}
        />
      </FilterBar>
      <ListView
        list={list}
        empty={
          filtered ? (
            <NoMatch
              title="No transaction matches"
              description="Change the subscriber or the dates."
              onClear={() => setQuery({ subscriber: null, from: null, to: null, page: null })}
            />
          ) : (
            <Empty
              title="No transactions yet"
              description="Record a payment here, or let your billing system post them with a write key."
              action={<Button onClick={openNew}>Record a transaction</Button>}
            />
          )
        }
      >
        {(rows) => (
          <ListTable
            minWidth={700}
            striped
            caption="Transactions"
            rows={rows}
            rowKey={(t) => t.id}
            columns={[
              {
                header: "When",
                cell: (t) => (
                  <Text size="sm" style={{ whiteSpace: "nowrap" }}>
                    {formatDateTime(t.created_at)}
                  </Text>
                ),
              },
              {
                header: "Subscriber",
                cell: (t) => (
                  <Anchor component={Link} href={`/subscribers/${t.subscriber_id}`} size="sm">
                    {subById.get(t.subscriber_id)?.username ?? `#${t.subscriber_id}`}
                  </Anchor>
                ),
              },
              {
                header: "Type",
                cell: (t) => (
                  <Badge
                    size="sm"
                    variant="light"
                    color={t.type === "payment" ? "teal" : t.type === "refund" ? "orange" : "gray"}
                  >
                    {t.type}
                  </Badge>
                ),
              },
              {
                header: "Amount",
                align: "right",
                cell: (t) => (
                  <Text size="sm" fw={500}>
                    {formatMoney(t.amount, t.currency)}
                  </Text>
                ),
              },
              {
                header: "Reference",
                cell: (t) => (
                  <>
                    <Text size="sm">{t.reference ?? "—"}</Text>
                    {t.description && (
                      <Text size="xs" c="dimmed" lineClamp={1}>
                        {t.description}
                      </Text>
                    )}
                  </>
                ),
              },
              {
                header: "Via",
                cell: (t) =>
                  t.api_key_id ? (
                    <Anchor component={Link} href={`/keys/${t.api_key_id}`} size="sm">
                      key {t.api_key_id}
                    </Anchor>
                  ) : (
                    <Text size="sm" c="dimmed">
                      console
                    </Text>
                  ),
              },
            ]}
          />
        )}
      </ListView>
      <Paging list={list} />
      <NewDialog title="Record a transaction">
        <TransactionForm
          subscribers={subs.data ?? []}
          subscriberId={subscriber}
          onCancel={closeNew}
          onSubmit={async (body) => {
            const res = await api.post<Transaction>("/api/transactions", body);
            closeNew();
            notify(
              res.status === 200
                ? "That reference was already recorded: the first transaction stands, nothing was added"
                : "Transaction recorded",
              res.status === 200 ? "yellow" : "teal",
            );
            list.reload();
          }}
        />
      </NewDialog>
    </>
  );
}
