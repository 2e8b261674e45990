import { describe, expectTypeOf, it } from "vitest";
import type { Keygate, Subscriber, Transaction, Whoami } from "./client.js";
import type { RequestBody, RequestQuery, SuccessBody, TemplateOf } from "./paths.js";

/** The types `request` derives from the generated document (checked by the compiler). */
describe("request types from the OpenAPI document", () => {
  it("matches concrete paths to their templates", () => {
    expectTypeOf<TemplateOf<"GET", "/subscribers/42">>().toEqualTypeOf<"/subscribers/{id}">();
    expectTypeOf<
      TemplateOf<"GET", "/subscribers/by-username/bob">
    >().toEqualTypeOf<"/subscribers/by-username/{username}">();
    expectTypeOf<
      TemplateOf<"GET", "/subscribers/42/usage">
    >().toEqualTypeOf<"/subscribers/{id}/usage">();
    expectTypeOf<
      TemplateOf<"POST", "/subscribers/42/suspend">
    >().toEqualTypeOf<"/subscribers/{id}/suspend">();
    // No POST at /whoami.
    expectTypeOf<TemplateOf<"POST", "/whoami">>().toBeNever();
  });

  it("types answers, bodies and queries; unknown paths stay unknown", () => {
    expectTypeOf<SuccessBody<"GET", "/whoami">["data"]>().toEqualTypeOf<Whoami>();
    expectTypeOf<SuccessBody<"GET", "/subscribers">["data"]>().toEqualTypeOf<Subscriber[]>();
    expectTypeOf<SuccessBody<"POST", "/transactions">["data"]>().toEqualTypeOf<Transaction>();
    expectTypeOf<RequestBody<"POST", "/transactions">>().toHaveProperty("subscriber_id");
    expectTypeOf<RequestBody<"GET", "/subscribers">>().toBeNever();
    expectTypeOf<RequestQuery<"GET", "/subscribers">>().toHaveProperty("per_page");
    expectTypeOf<SuccessBody<"GET", "/no/such/path">>().toBeUnknown();
  });

  it("types the conveniences", () => {
    expectTypeOf<Keygate["whoami"]>().returns.resolves.toEqualTypeOf<Whoami>();
    expectTypeOf<Keygate["subscribers"]["get"]>().returns.resolves.toEqualTypeOf<Subscriber>();
    expectTypeOf<Keygate["transactions"]["create"]>().parameter(0).toHaveProperty("amount");
  });
});
