// @vitest-environment happy-dom
import { act, renderHook } from "@testing-library/react";
import type { ChangeEvent } from "react";
import { describe, expect, it } from "vitest";
import { upperCase, useForm } from "./form";

type Values = { amount: string; currency: string; active: boolean };

const typing = (value: string) =>
  ({ currentTarget: { value } }) as unknown as ChangeEvent<HTMLInputElement>;

function useMoneyForm() {
  return useForm<Values>({
    initial: { amount: "", currency: "usd", active: true },
    validate: (v) => (v.amount ? {} : { amount: "Enter an amount." }),
    idPrefix: "money",
  });
}

describe("a text input bound to a form field", () => {
  it("shows the field's value and sets what is typed", () => {
    const { result } = renderHook(useMoneyForm);
    expect(result.current.text("amount").value).toBe("");
    act(() => result.current.text("amount").onChange(typing("19.99")));
    expect(result.current.values.amount).toBe("19.99");
    expect(result.current.text("amount").value).toBe("19.99");
  });

  it("passes what is typed through a transform", () => {
    const { result } = renderHook(useMoneyForm);
    act(() => result.current.text("currency", upperCase).onChange(typing("eur")));
    expect(result.current.values.currency).toBe("EUR");
  });

  it("carries the field's id, and its problem once the field was changed and left", () => {
    const { result } = renderHook(useMoneyForm);
    expect(result.current.text("amount").id).toBe("money-amount");
    expect(result.current.text("amount").error).toBeUndefined();
    act(() => result.current.text("amount").onChange(typing("2")));
    act(() => result.current.text("amount").onBlur());
    act(() => result.current.text("amount").onChange(typing("")));
    expect(result.current.text("amount").error).toBe("Enter an amount.");
  });
});
