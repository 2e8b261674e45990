import type { Audit } from "../audit.js";
import type { Principal } from "../auth/principal.js";
import { requireAdmin } from "../auth/service.js";

/** What a reset removed: the test rows of each table. */
export type TestDataCounts = { subscribers: number; transactions: number; usage: number };

export interface TestDataRepo {
  /** Deletes every test subscriber, transaction and usage row in one transaction; live rows are not touched. */
  wipe(): Promise<TestDataCounts>;
}

/** The test environment's data, which an admin can wipe to start over (keys and call logs stay). */
export class TestData {
  constructor(
    private readonly repo: TestDataRepo,
    private readonly audit: Audit,
  ) {}

  async reset(p: Principal): Promise<TestDataCounts> {
    requireAdmin(p, "reset the test data");
    const removed = await this.repo.wipe();
    await this.audit.record(p, "test_data.reset", { type: "test_data" }, { ...removed });
    return removed;
  }
}
