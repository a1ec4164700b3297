import type { Prisma, PrismaClient } from "@prisma/client";

/** The answer of an operation that returns one (a guest script's exit code and output), on its row. */
export function createOperationResultActivities(prisma: PrismaClient) {
  return {
    async operationResult(input: { operationId: string; result: unknown }): Promise<void> {
      await prisma.operation.update({ where: { id: input.operationId }, data: { result: input.result as Prisma.InputJsonValue } });
    },
  };
}
