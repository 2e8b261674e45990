import { Anchor, Button, Group, Text, TextInput } from "@mantine/core";
import { useDebouncedValue, useMediaQuery } from "@mantine/hooks";
import { useEffect, useMemo, useState } from "react";
import { useUser } from "../auth";
import { ListTable } from "../components/DataTable";
import {
  CardList,
  closeNew,
  FilterBar,
  ListView,
  NewDialog,
  NoMatch,
  openNew,
  Paging,
  QuerySelect,
} from "../components/ListPage";
import { ShowOnceDialog } from "../components/ShowOnce";
import { type SubscriberBody, SubscriberForm } from "../components/SubscriberForm";
import { useNotify } from "../components/Toasts";
import { Empty, PageHeader, StatusBadge } from "../components/ui";
import { api } from "../lib/api";
import { formatDate } from "../lib/format";
import { usePagedList } from "../lib/paging";
import { Link, navigate, setQuery, useLocation } from "../lib/router";
import type { Service, Subscriber, UserRow } from "../lib/types";
import { useResource } from "../lib/useResource";

const PER_PAGE = 25;

export function useServices() {
  const services = useResource<Service[]>("/api/services");
  const byId = useMemo(() => new Map((services.data ?? []).map((s) => [s.id, s])), [services.data]);
  return { services: services.data, byId, error: services.error };
}

export function Subscribers() {
  const user = useUser();
  const notify = useNotify();
  const { query } = useLocation();
  const status = query.get("status") ?? "";
  const service = query.get("service") ?? "";
  const search = query.get("q") ?? "";
  const phone = useMediaQuery("(max-width: 40em)");

  const [typed, setTyped] = useState(search);
  const [debounced] = useDebouncedValue(typed, 300);
  useEffect(() => {
    if (debounced !== search) setQuery({ q: debounced, page: null });
  }, [debounced]);

  const list = usePagedList<Subscriber>("/api/subscribers", PER_PAGE, {
    status,
    service_id: service,
    search: search.trim(),
  });
  const { services, byId: serviceById } = useServices();
  const users = useResource<UserRow[]>(user.isAdmin ? "/api/users" : null);
  const userById = useMemo(() => new Map((users.data ?? []).map((u) => [u.id, u])), [users.data]);
  const [created, setCreated] = useState<Subscriber | null>(null);

  const filtered = Boolean(status || service || search);

  const create = async (body: SubscriberBody) => {
    const res = await api.post<Subscriber>("/api/subscribers", body);
    closeNew();
    list.reload();
    if (res.data.password) setCreated(res.data);
    else {
      notify(`Subscriber ${res.data.username} created`);
      navigate(`/subscribers/${res.data.id}`);
    }
  };

  return (
    <>
      <PageHeader
        title="Subscribers"
        description={
          user.isAdmin ? "Every subscriber, of every reseller." : "The subscribers you own."
        }
        actions={<Button onClick={openNew}>Add a subscriber</Button>}
      />
      <FilterBar cols={{ base: 1, xs: 3 }}>
        <TextInput
          label="Search"
          placeholder="Username, name, email or phone"
          type="search"
          value={typed}
          onChange={(e) => setTyped(e.currentTarget.value)}
        />
        <QuerySelect
          label="Status"
          param="status"
          any="Any status"
          paged
          data={[
            { value: "active", label: "Active" },
            { value: "suspended", label: "Suspended" },
            { value: "expired", label: "Expired" },
          ]}
        />
        <QuerySelect
          label="Service"
          param="service"
          any="Any service"
          paged
          data={(services ?? []).map((s) => ({ value: String(s.id), label: s.name }))}
          searchable
        />
      </FilterBar>

      <ListView
        list={list}
        empty={
          filtered ? (
            <NoMatch
              title="No subscriber matches"
              description="Change the search or the filters."
              onClear={() => {
                setTyped("");
                setQuery({ q: null, status: null, service: null, page: null });
              }}
            />
          ) : (
            <Empty
              title="No subscribers yet"
              description={
                services && services.length === 0
                  ? "A subscriber needs a service: add one under Services first, then add subscribers here."
                  : "Add your first subscriber, or let your billing system create them with a write key."
              }
              action={
                <Group>
                  <Button onClick={openNew}>Add a subscriber</Button>
                  {services && services.length === 0 && user.isAdmin && (
                    <Button variant="default" component={Link} href="/services?new=1">
                      Add a service
                    </Button>
                  )}
                </Group>
              }
            />
          )
        }
      >
        {(rows) =>
          phone ? (
            <CardList
              label="Subscribers"
              rows={rows}
              card={(s) => ({
                href: `/subscribers/${s.id}`,
                title: s.username,
                status: s.status,
                body: (
                  <>
                    <Text size="sm" mt={4}>
                      {[s.full_name, serviceById.get(s.service_id)?.name]
                        .filter(Boolean)
                        .join(" · ")}
                    </Text>
                    <Text size="xs" c="dimmed">
                      {[s.email, s.phone, s.expiry_date && `expires ${formatDate(s.expiry_date)}`]
                        .filter(Boolean)
                        .join(" · ")}
                    </Text>
                  </>
                ),
              })}
            />
          ) : (
            <ListTable
              minWidth={680}
              highlightOnHover
              caption={`Subscribers, page ${list.page} of ${list.pages}`}
              rows={rows}
              rowKey={(s) => s.id}
              columns={[
                {
                  header: "Username",
                  cell: (s) => (
                    <Anchor component={Link} href={`/subscribers/${s.id}`} fw={500} size="sm">
                      {s.username}
                    </Anchor>
                  ),
                },
                {
                  header: "Name",
                  cell: (s) => (
                    <>
                      <Text size="sm">{s.full_name ?? "—"}</Text>
                      {s.email && (
                        <Text size="xs" c="dimmed">
                          {s.email}
                        </Text>
                      )}
                    </>
                  ),
                },
                {
                  header: "Service",
                  cell: (s) => (
                    <Text size="sm">
                      {serviceById.get(s.service_id)?.name ?? `#${s.service_id}`}
                    </Text>
                  ),
                },
                { header: "Status", cell: (s) => <StatusBadge status={s.status} /> },
                {
                  header: "Expiry",
                  cell: (s) => <Text size="sm">{formatDate(s.expiry_date)}</Text>,
                },
                user.isAdmin && {
                  header: "Owner",
                  cell: (s) => (
                    <Text size="sm">
                      {s.owner_id === user.id
                        ? "you"
                        : (userById.get(s.owner_id)?.username ?? `user ${s.owner_id}`)}
                    </Text>
                  ),
                },
              ]}
            />
          )
        }
      </ListView>
      <Paging
        list={list}
        gap="sm"
        pagination={{ getItemProps: (p) => ({ "aria-label": `Page ${p}` }), "aria-label": "Pages" }}
      />

      <NewDialog title="Add a subscriber">
        <SubscriberForm
          services={services ?? []}
          isAdmin={user.isAdmin}
          users={users.data}
          onSubmit={create}
          onCancel={closeNew}
        />
      </NewDialog>
      {created?.password && (
        <ShowOnceDialog
          opened
          title={`Subscriber ${created.username} created`}
          intro="Give this password to the subscriber. It is stored only as a hash."
          secretLabel="Generated password"
          secret={created.password}
          onClose={() => {
            const id = created.id;
            setCreated(null);
            navigate(`/subscribers/${id}`);
          }}
        />
      )}
    </>
  );
}
